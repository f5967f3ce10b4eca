//! What `host_status` and the service requests answer: uptime, the boot report with the
//! configuration's provenance, the supervised services and whether VMs get KVM or TCG.
//!
//! These are the protocol's own small types, not mfv-init's or mfv-config's: the web server
//! links this crate and must not pull the system crates in through it, and the wire format must
//! not change when an internal type does. The daemon converts into them.

use serde::{Deserialize, Serialize};

use crate::ConfigIssue;

/// The host as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct HostStatus {
    /// Milliseconds since the kernel started.
    pub uptime_ms: u64,
    /// What the boot did.
    pub boot: BootReport,
    /// Every supervised service, by name.
    pub services: Vec<ServiceStatus>,
    /// How virtual machines run.
    pub virtualization: Virtualization,
    /// The `[network]` section of the network in effect (TOML text, header included), when
    /// it came from one: the configuration's, or the last change confirmed. `None` when it
    /// came from `mfv.net=` or there is no network.
    #[serde(default)]
    pub network_in_effect: Option<String>,
}

impl HostStatus {
    /// A status without services.
    pub fn new(uptime_ms: u64, boot: BootReport, virtualization: Virtualization) -> Self {
        Self {
            uptime_ms,
            boot,
            services: Vec::new(),
            virtualization,
            network_in_effect: None,
        }
    }
}

/// How virtual machines run. Serializes as `kvm`, `tcg` or `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Virtualization {
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// QEMU's software emulation: no usable /dev/kvm.
    Tcg,
    /// Not known yet: the host loads the KVM module once its web server answers, before
    /// libvirtd starts (a second or so after).
    Pending,
}

/// The boot: its phases and where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct BootReport {
    /// The boot phases that ran, in order.
    pub phases: Vec<BootPhase>,
    /// Where the configuration came from.
    pub config: ConfigProvenance,
}

impl BootReport {
    /// A report without phases.
    pub fn new(config: ConfigProvenance) -> Self {
        Self {
            phases: Vec::new(),
            config,
        }
    }
}

/// One boot phase (`mounts`, `coldplug`, `config`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct BootPhase {
    /// The phase's name as the console shows it.
    pub name: String,
    /// How long it took, in microseconds.
    pub duration_us: u64,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
}

impl BootPhase {
    /// A phase that succeeded.
    pub fn new(name: impl Into<String>, duration_us: u64) -> Self {
        Self {
            name: name.into(),
            duration_us,
            error: None,
        }
    }
}

/// Where the configuration came from at boot. Serializes as an object whose `result` is
/// `found`, `invalid` or `not_found`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConfigProvenance {
    /// A valid configuration was found and used.
    Found {
        /// The device it was read from, e.g. `/dev/sda1`.
        device: String,
        /// The kind of store on that device.
        store: StoreKind,
        /// The generation used; `None` for a file written by hand.
        generation: Option<u64>,
        /// Whether that is the current generation or the last-known-good one.
        origin: ConfigOrigin,
    },
    /// No configuration was found (or discovery was disabled with `mfv.config=none`).
    NotFound,
    /// The first configuration found was invalid, so none was used.
    Invalid {
        /// The device it was read from.
        device: String,
        /// Every problem in it, in file order.
        errors: Vec<ConfigIssue>,
    },
}

/// The kind of configuration store. Serializes as `directory` or `sqlite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreKind {
    /// `mfv.toml` with a generation header, and `mfv.toml.prev`.
    Directory,
    /// A table of generations in an SQLite database.
    Sqlite,
}

/// Which generation a configuration is. Serializes as `current` or `last_known_good`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConfigOrigin {
    /// The newest generation.
    Current,
    /// An older generation, used because the newer ones are unusable.
    LastKnownGood,
}

/// A supervised service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct ServiceStatus {
    /// Its name, e.g. `mfv-web` or `libvirtd`.
    pub name: String,
    /// What it is doing.
    pub state: ServiceState,
    /// Its process id while it has a process.
    pub pid: Option<u32>,
    /// How many times it was restarted since the boot.
    pub restarts: u32,
    /// How its last process ended, if one did.
    pub last_exit: Option<ExitStatus>,
}

impl ServiceStatus {
    /// A service that never ran a process yet.
    pub fn new(name: impl Into<String>, state: ServiceState) -> Self {
        Self {
            name: name.into(),
            state,
            pid: None,
            restarts: 0,
            last_exit: None,
        }
    }
}

/// A service's state. Serializes in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServiceState {
    /// Not started yet: a service it needs is not ready.
    Waiting,
    /// Started and not yet ready.
    Starting,
    /// Ready and running.
    Running,
    /// Not running, on purpose.
    Stopped,
    /// It exited and is started again after a delay.
    Restarting,
    /// It keeps exiting; restarts are delayed.
    CrashLooping,
}

impl std::fmt::Display for ServiceState {
    /// The state in words, for people: `running`, `crash looping`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServiceState::Waiting => "waiting",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Stopped => "stopped",
            ServiceState::Restarting => "restarting",
            ServiceState::CrashLooping => "crash looping",
        })
    }
}

/// How a process ended. Serializes as `{"how": "exited", "code": 1}` or
/// `{"how": "killed", "signal": 9}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "how", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExitStatus {
    /// It exited with a status code.
    Exited {
        /// The exit code.
        code: i32,
    },
    /// A signal killed it.
    Killed {
        /// The signal number.
        signal: i32,
    },
}
