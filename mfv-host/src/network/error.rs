//! What can go wrong while the network is set up or changed.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use mfv_linux::InterfaceNameError;
use mfv_net::dhcp::DhcpError;
use mfv_net::{ApplyError, DnsError, IpCidr, NetError, RollbackReport};

/// A network workflow failed; the message names the interface or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The tokio runtime the network work runs on could not start.
    #[error("cannot start the network runtime")]
    Runtime(#[source] std::io::Error),
    /// A netlink request failed.
    #[error(transparent)]
    Netlink(#[from] NetError),
    /// Applying a network state failed (and was rolled back, as the source says).
    #[error("cannot {action}")]
    Apply {
        /// What was being done (`configure eth0`, `make eth0 a port of br0`).
        action: String,
        /// The failure and its rollback.
        #[source]
        source: ApplyError,
    },
    /// Reading the current state of some interfaces failed.
    #[error("cannot read the state of {interfaces}")]
    ReadState {
        /// The interfaces, comma-separated.
        interfaces: String,
        /// The cause.
        #[source]
        source: NetError,
    },
    /// A name the kernel would not accept as an interface name.
    #[error(transparent)]
    InterfaceName(#[from] InterfaceNameError),
    /// A bond was named as one of its own ports.
    #[error("{bond} cannot be a port of itself")]
    BondIsItsOwnPort {
        /// The bond.
        bond: String,
    },
    /// A bond port was named twice.
    #[error("port {port} is named twice")]
    PortNamedTwice {
        /// The port.
        port: String,
    },
    /// The primary port of a bond is not one of its ports.
    #[error("the primary {primary} is not one of the ports ({})", ports.join(", "))]
    PrimaryNotAPort {
        /// The primary asked for.
        primary: String,
        /// The ports.
        ports: Vec<String>,
    },
    /// A static address's gateway lies outside the address's network.
    #[error(
        "gateway {gateway} is not in the network of {address}: the route through it would not \
         reach it from {interface}"
    )]
    GatewayOutsideNetwork {
        /// The gateway.
        gateway: IpAddr,
        /// The address with its prefix.
        address: IpCidr,
        /// The interface.
        interface: String,
    },
    /// The DNS servers cannot be written as a resolver configuration.
    #[error("invalid DNS servers")]
    Dns(#[source] DnsError),
    /// A network card had to be picked and there is none.
    #[error("no network card to pick: none was found")]
    NoNetworkCard,
    /// A network card had to be picked and none has carrier.
    #[error(
        "no network card has carrier after {} s (looked at {})",
        waited.as_secs_f64(),
        looked_at.join(", ")
    )]
    NoCarrier {
        /// How long the cards were watched.
        waited: Duration,
        /// The cards looked at.
        looked_at: Vec<String>,
    },
    /// DHCP was asked for on an interface without a hardware address.
    #[error("{interface} has no hardware address: DHCP needs one")]
    NoHardwareAddress {
        /// The interface.
        interface: String,
    },
    /// The DHCP client could not start or stopped with an error (which names the interface).
    #[error(transparent)]
    Dhcp(DhcpError),
    /// The DHCP client ended before a lease was bound.
    #[error("the DHCP client on {interface} ended without a lease")]
    NoLease {
        /// The interface.
        interface: String,
    },
    /// The task running a DHCP client ended abnormally (it panicked or was cancelled).
    #[error("the DHCP client task on {interface} ended abnormally")]
    DhcpTask {
        /// The interface.
        interface: String,
    },
    /// A DHCP client was to be stopped where none runs.
    #[error("no DHCP client runs on {interface}")]
    NoDhcpClient {
        /// The interface.
        interface: String,
    },
    /// A provisional apply was asked for while another waits for its decision.
    #[error("a provisional network change is waiting for its confirmation already")]
    ProvisionalPending,
    /// A provisional apply was to be kept or rolled back and there is none.
    #[error("no provisional network change is waiting")]
    NoProvisionalChange,
    /// A provisional apply was to be kept, but its backstop had restored the previous state.
    #[error("the change was rolled back before it was kept: {rollback}")]
    RolledBackAlready {
        /// How restoring the previous state went.
        rollback: RollbackReport,
    },
    /// `resolv.conf` could not be read to be restored later.
    #[error("cannot read {}", path.display())]
    ResolvConf {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Setting the loopback interface up failed.
    #[error("cannot set lo up")]
    LoopbackUp(#[source] Box<NetworkError>),
    /// Starting the DHCP client of an interface failed.
    #[error("cannot start the DHCP client on {interface}")]
    StartDhcp {
        /// The interface.
        interface: String,
        /// The cause.
        #[source]
        source: Box<NetworkError>,
    },
}
