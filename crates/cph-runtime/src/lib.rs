//! The boundary between the control plane and the hosts that run phones.
//!
//! A host agent runs the phones of one host. The control plane talks to it only through
//! [`HostAgent`] with serialisable messages ([`AgentCommand`] in, [`CommandResult`] out), so the
//! same conversation can later cross the network. Every command carries the id of the job that
//! asked for it: an agent that sees the same id twice returns the first result instead of
//! acting again, so a job re-run after a crash is harmless.
//!
//! [`virtual_host::VirtualHostAgent`] is the embedded default: in-process virtual hosts whose
//! phone lifecycle (boot, stop, restart, reset) takes configurable time.

pub mod hosting;
pub mod virtual_host;

pub use cph_adb::device::InProcessConnection;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What a phone needs to exist on a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneSpec {
    pub phone_id: String,
    pub server_id: String,
    pub phone_model_name: String,
    pub image_id: String,
    pub imei: String,
    pub phone_ip: String,
    /// Properties set through the API (appendix A.1 keys), applied at boot.
    pub properties: BTreeMap<String, serde_json::Value>,
    /// What the phone model and image make the phone look like.
    #[serde(default)]
    pub profile: PhoneProfile,
    /// ADB public keys (`adbkey.pub` lines) allowed to connect besides the host's own keys,
    /// e.g. the server's key pair.
    #[serde(default)]
    pub adb_keys: Vec<String>,
    /// TCP ports inside the phone that the host makes reachable, each on a host port of its own
    /// (the application ports bought with the phone's server). The agent reports the host ports
    /// it bound ([`PhoneState::ports`], [`HostAgent::port_endpoints`]).
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// The identity a phone presents, resolved by the control plane from its catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhoneProfile {
    /// `ro.product.name`
    pub product_name: String,
    /// `ro.product.model`
    pub model: String,
    /// `ro.product.device`
    pub device: String,
    pub brand: String,
    pub manufacturer: String,
    /// Display size in pixels and density in dpi (`wm size`, `wm density`).
    pub width: u32,
    pub height: u32,
    pub density: u32,
    /// Android release (`ro.build.version.release`) and SDK level of the image.
    pub android_version: String,
    pub sdk: u32,
    /// The image's name and OS name, for `ro.build.*`.
    pub image_name: String,
    pub os_name: String,
    /// Default values of the API-settable properties (appendix A.1), set before the phone's own.
    #[serde(default)]
    pub default_properties: BTreeMap<String, String>,
}

/// A command for a host agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AgentCommand {
    /// Create the phone if absent (idempotent) and boot it.
    CreatePhone { spec: PhoneSpec },
    /// Make the host hold the phone in the given power state at once, without a boot cycle
    /// (reconciliation after a host or control-plane restart).
    AdoptPhone { spec: PhoneSpec, running: bool },
    /// Boot a stopped phone, or restart a running one, optionally on a new image or properties.
    RestartPhone { spec: PhoneSpec },
    /// Power a phone off.
    StopPhone { phone_id: String },
    /// Restore the phone's data to the image's factory state and boot it.
    ResetPhone { spec: PhoneSpec },
    /// Apply properties to a phone (those that need a restart take effect at the next boot).
    SetProperties {
        phone_id: String,
        properties: BTreeMap<String, serde_json::Value>,
    },
    /// Replace the ADB keys a phone accepts besides the host's (`adbkey.pub` lines), e.g. after
    /// its server's key pair changed. Running phones apply them to new connections at once;
    /// the next boot uses them too.
    SetAdbKeys {
        phone_id: String,
        adb_keys: Vec<String>,
    },
    /// Remove a phone and its data from the host.
    DeletePhone { phone_id: String },
    /// Restart the encode service of a server.
    RestartEncodeServer {
        server_id: String,
        encode_server_id: String,
    },
}

/// A command with the id of the job that issued it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub command_id: String,
    pub command: AgentCommand,
}

/// The result of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CommandResult {
    Ok { message: Option<String> },
    Failed { code: String, message: String },
}

/// Power state of a phone as its host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhonePower {
    Running,
    Stopped,
    Booting,
    Stopping,
}

/// One phone in a host's inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneState {
    pub phone_id: String,
    pub power: PhonePower,
    pub image_id: String,
    pub boot_count: u64,
    /// Host port of the phone's ADB endpoint while it accepts connections.
    #[serde(default)]
    pub adb_port: Option<u16>,
    /// Host ports that reach the phone's own TCP ports while it runs.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

/// A host port that reaches a TCP port inside a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// The port inside the phone.
    pub listen_port: u16,
    /// The host port connections arrive on.
    pub access_port: u16,
}

/// Everything a host runs, reported on every (re)connect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub host_id: String,
    pub phones: Vec<PhoneState>,
}

/// A host agent, in-process or remote.
pub trait HostAgent: Send + Sync + 'static {
    /// A stable id of this agent.
    fn agent_id(&self) -> &str;

    /// Runs one command to completion (or failure). Implementations bound their own waits.
    fn execute(&self, envelope: CommandEnvelope) -> BoxFuture<'_, CommandResult>;

    /// What the agent runs now.
    fn inventory(&self) -> BoxFuture<'_, Inventory>;

    /// Where the phone's ADB endpoint accepts connections now (`None` while it does not: the
    /// phone is stopped, booting, unknown, or the agent runs no endpoints).
    fn adb_endpoint(&self, phone_id: &str) -> Option<SocketAddr> {
        let _ = phone_id;
        None
    }

    /// Serves `conn`, a connection made in this process (e.g. an SSH gateway's in-process
    /// tunnel), on the phone's ADB endpoint, as if it had arrived at
    /// [`HostAgent::adb_endpoint`] (same handshake, keys and limits); its received chunks are
    /// taken without copying. `false` (and `conn` dropped) when the phone does not run, its
    /// endpoint is full, or the agent does not host its phones in this process; the caller
    /// then uses the TCP endpoint.
    fn attach_adb(&self, phone_id: &str, conn: InProcessConnection) -> bool {
        let _ = (phone_id, conn);
        false
    }

    /// Where each mapped port of the phone ([`PhoneSpec::ports`]) accepts connections now, as
    /// (port inside the phone, host address); empty while the phone does not run.
    fn port_endpoints(&self, phone_id: &str) -> Vec<(u16, SocketAddr)> {
        let _ = phone_id;
        Vec::new()
    }

    /// Whether this agent's phones have ADB endpoints at all.
    fn runs_endpoints(&self) -> bool {
        false
    }

    /// Where the server's shared-storage volume accepts ADB connections (started on demand):
    /// a device whose `/` holds the volume's `/data`, `/cache` and `/apps`, which every phone
    /// of the server sees read-only at [`hosting::SHARE_MOUNT`]. An error says why there is
    /// none (e.g. the agent keeps no shared storage).
    fn share_endpoint<'a>(
        &'a self,
        server_id: &'a str,
    ) -> BoxFuture<'a, Result<SocketAddr, String>> {
        let _ = server_id;
        Box::pin(async { Err("this host keeps no shared storage".to_string()) })
    }
}
