//! The host's network, from settings to the kernel: [`plan`] computes the desired state from
//! the configuration or `mfv.net=` (pure), [`boot`] is the boot's network phase, [`dhcp`]
//! runs DHCP clients as stoppable sessions, [`change`] makes the changes `mfv net` asks for,
//! [`live`] is PID 1's network after the boot, changed provisionally through the host daemon
//! ([`handover`]: the files between the two).

pub mod boot;
pub mod change;
pub mod dhcp;
mod error;
pub mod handover;
pub mod live;
pub mod plan;

use mfv_config::schema::NetworkConfig;

pub use boot::{
    BootDhcp, CARRIER_WAIT, LineSink, NetlinkNetwork, Network, RecordingNetwork, configure,
    dhcp_clients,
};
pub use dhcp::{DhcpSession, DhcpSettings, SessionEvent, dhcp_event_line, obtain_lease};
pub use error::NetworkError;
pub use live::{ChangeError, LiveNetwork, PendingChange};
pub use plan::{NetworkPlan, NetworkSteps, nic_candidates};

/// `section` as the text of a `[network]` section.
pub fn section_toml(section: &NetworkConfig) -> String {
    #[derive(serde::Serialize)]
    struct Section<'a> {
        network: &'a NetworkConfig,
    }
    match toml::to_string(&Section { network: section }) {
        Ok(text) => text,
        // Strings, integers, lists and tables of those always serialize to TOML.
        Err(error) => unreachable!("a network section always serializes to TOML: {error}"),
    }
}
