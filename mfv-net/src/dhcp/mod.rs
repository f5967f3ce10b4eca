//! A DHCPv4 client (RFC 2131) that runs as an async task per interface.
//!
//! The client starts in INIT (DISCOVER, OFFER, REQUEST, ACK) or, with a remembered lease, in
//! INIT-REBOOT; once bound it renews at T1 with a unicast REQUEST to its server, rebinds at
//! T2 with a broadcast, and removes the address when the lease expires. A NAK sends it back
//! to INIT. On shutdown it releases the lease (unless told to leave it configured).
//!
//! A server cannot make the client spin: a lease shorter than [`Timing::min_lease`] (60 s,
//! a lease time of 0 included) is kept that long, with T1 at least half of it (30 s) and T2
//! at least 7/8 of it (52.5 s) after binding; after a NAK or an expiry the next DISCOVER waits
//! [`Timing::first_retransmit`], doubled for each further NAK or expiry until a lease is
//! bound, up to [`Timing::max_retransmit`].
//!
//! A lease never takes over what is configured beside it: [`NetlinkLeaseApplier`] adds the
//! router as a default route at its own metric ([`LEASE_ROUTE_METRIC`] by default, above a
//! static gateway's 0), never in place of another route, and removes only that route when
//! the lease ends; it writes `resolv.conf` only when given one, and the lease's domain name
//! only when it is a valid search domain.
//!
//! Requests are retransmitted with randomized exponential backoff: the first wait is
//! [`Timing::first_retransmit`] (4 s in RFC 2131; callers that want a faster first retry,
//! such as a booting appliance, may set 1 s), doubled each time up to
//! [`Timing::max_retransmit`] (64 s), each wait moved by a uniform random amount of up to
//! [`Timing::jitter`] (1 s) either way.
//!
//! The pieces, each replaceable for tests:
//! - [`DhcpTransport`] sends and receives the packets; [`UdpTransport`] is the real one;
//! - [`LeaseApplier`] configures the interface; [`NetlinkLeaseApplier`] is the real one and
//!   [`RecordingApplier`] records what would be done;
//! - [`DhcpClient::run`] is the task; it reports through [`DhcpEvent`]s on a channel and ends
//!   with a [`DhcpExit`] or a [`DhcpError`].
//!
//! Packets that are not replies to this client (garbage, another transaction, another
//! hardware address, a BOOTREQUEST, an unexpected message type) are ignored and counted
//! ([`DhcpEvent::PacketIgnored`]); they never end the client.

mod applier;
mod client;
mod lease;
mod machine;
mod packet;
#[cfg(test)]
mod tests;
mod transport;

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

pub use applier::{
    AppliedChange, LEASE_ROUTE_METRIC, LeaseApplier, NetlinkLeaseApplier, RecordingApplier,
};
pub use client::{DhcpClient, DhcpExit};
pub use lease::{Lease, load_lease, save_lease};
pub use machine::{DhcpAction, DhcpMachine};
pub use packet::IgnoreReason;
pub use transport::{DhcpTransport, UdpTransport};

use crate::dns::DnsError;
use crate::netlink::NetError;
use mfv_linux::atomic_file::WriteStep;

/// Longest host name sent in the hostname option: one DNS label.
const MAX_HOSTNAME_LEN: usize = 63;

/// Why the DHCP client stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// No server gave a lease within [`Timing::acquire_timeout`]. The interface was not
    /// touched.
    #[error(
        "no DHCP lease on {interface}: no server answered within {:.1} s (the interface was left as it was)",
        .waited.as_secs_f64()
    )]
    NoAnswer {
        /// The interface the client ran on.
        interface: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The configuration cannot be used.
    #[error("invalid DHCP client settings for {interface}: {problem}")]
    InvalidConfig {
        /// The interface the client was to run on.
        interface: String,
        /// What is wrong.
        problem: String,
    },
    /// A hardware address in text form is not six hex bytes separated by colons.
    #[error("{text:?} is not a hardware address (as in 02:00:00:00:00:01)")]
    InvalidMac {
        /// The text as given.
        text: String,
    },
    /// Opening, sending on or receiving from the DHCP socket failed.
    #[error("cannot {action} on {interface}")]
    Transport {
        /// The interface.
        interface: String,
        /// What failed, e.g. `send a DHCP packet`.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Configuring the interface with the lease failed.
    #[error("cannot {action} on {interface}")]
    Apply {
        /// The interface.
        interface: String,
        /// What failed, e.g. `add the leased address 192.0.2.50/24`.
        action: String,
        /// Why.
        #[source]
        source: NetError,
    },
    /// The lease's default route cannot be added: another default route has its metric,
    /// and it is left as it is.
    #[error("cannot {action} on {interface}: {holder} has that metric")]
    RouteMetricTaken {
        /// The interface.
        interface: String,
        /// What was to be done, e.g. `add the default route via 192.0.2.1 metric 1024`.
        action: String,
        /// The route that has the metric, e.g. `the route default via 198.51.100.1 dev st0
        /// metric 1024`.
        holder: String,
    },
    /// Writing `resolv.conf` from the lease failed.
    #[error("cannot write the resolver settings of the lease on {interface}")]
    ResolvConf {
        /// The interface.
        interface: String,
        /// Why.
        #[source]
        source: DnsError,
    },
    /// Writing the lease file failed at `step`.
    #[error("cannot save the lease to {path} ({step})")]
    SaveLease {
        /// The lease file.
        path: PathBuf,
        /// The step that failed.
        step: WriteStep,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading the lease file failed.
    #[error("cannot read the lease file {path}")]
    ReadLease {
        /// The lease file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The lease file is not one this version wrote for this interface.
    #[error("lease file {path} is invalid: {problem}")]
    InvalidLeaseFile {
        /// The lease file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// The client's state, as in RFC 2131 figure 5. INIT and INIT-REBOOT last no time here: the
/// client sends at once and is in SELECTING or REBOOTING.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhcpState {
    /// A DISCOVER was sent (or is about to be); waiting for an OFFER.
    Selecting,
    /// A REQUEST for an offer was sent; waiting for the ACK.
    Requesting,
    /// A REQUEST for a remembered address was sent (INIT-REBOOT); waiting for the ACK.
    Rebooting,
    /// The lease is configured; waiting for T1.
    Bound,
    /// T1 passed: asking the lease's server to extend it.
    Renewing,
    /// T2 passed: asking any server to extend it.
    Rebinding,
}

impl std::fmt::Display for DhcpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DhcpState::Selecting => "SELECTING",
            DhcpState::Requesting => "REQUESTING",
            DhcpState::Rebooting => "REBOOTING",
            DhcpState::Bound => "BOUND",
            DhcpState::Renewing => "RENEWING",
            DhcpState::Rebinding => "REBINDING",
        })
    }
}

/// What the client reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpEvent {
    /// The client entered this state.
    State(DhcpState),
    /// A server offered an address; the client requests it.
    Offered {
        /// The offering server.
        server: Ipv4Addr,
        /// The offered address.
        address: Ipv4Addr,
    },
    /// A lease for a new address was configured on the interface.
    Bound(Lease),
    /// The lease was extended (same address); changed settings were applied.
    Renewed(Lease),
    /// A server refused the request; the lease, if any, was removed and the client restarts.
    Nak {
        /// The refusing server (0.0.0.0 when the NAK did not say).
        server: Ipv4Addr,
        /// The server's explanation, if it sent one.
        message: Option<String>,
    },
    /// The lease ran out without being extended; its address was removed.
    Expired(Lease),
    /// The lease was given back on shutdown and its address removed.
    Released(Lease),
    /// A packet was dropped; `total` counts every dropped packet so far.
    PacketIgnored {
        /// Why it was dropped.
        reason: IgnoreReason,
        /// Packets dropped since the client started, for every reason.
        total: u64,
    },
    /// The lease file could not be read or written; the client goes on without it.
    LeaseFileProblem {
        /// What went wrong, with the path.
        problem: String,
    },
}

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255, port 67.
    Broadcast,
    /// This server's address, port 67.
    Server(Ipv4Addr),
}

/// Timers of the client. [`Timing::default`] has the RFC 2131 values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Wait before the first retransmission while acquiring a lease (RFC: 4 s).
    pub first_retransmit: Duration,
    /// Longest wait between retransmissions while acquiring a lease (RFC: 64 s).
    pub max_retransmit: Duration,
    /// Each wait while acquiring moves by a random amount up to this, either way (RFC: 1 s).
    pub jitter: Duration,
    /// Shortest wait between retransmissions while renewing or rebinding (RFC: 60 s).
    pub min_renew_retransmit: Duration,
    /// REQUESTs sent for an offer, or for a remembered address, before starting over with a
    /// DISCOVER.
    pub request_attempts: u32,
    /// Give up when there is no first lease this long after the start; `None` tries
    /// forever. After the first lease the client never gives up by itself.
    pub acquire_timeout: Option<Duration>,
    /// Lease time, T1 and T2 are scaled to this percentage of what the server sent. 100 in
    /// use; tests shrink a server's minimum lease time (2 minutes for dnsmasq) with it.
    pub lease_time_percent: u32,
    /// The shortest lease kept (60 s): a shorter one, a lease time of 0 included, counts as
    /// this long, T1 comes at least half of it and T2 at least 7/8 of it after binding, so
    /// a server cannot make the client bind, renew or expire without pause. Not zero.
    pub min_lease: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            first_retransmit: Duration::from_secs(4),
            max_retransmit: Duration::from_secs(64),
            jitter: Duration::from_secs(1),
            min_renew_retransmit: Duration::from_secs(60),
            request_attempts: 4,
            acquire_timeout: Some(Duration::from_secs(60)),
            lease_time_percent: 100,
            min_lease: Duration::from_secs(60),
        }
    }
}

impl Timing {
    /// `seconds` from the server, scaled by [`Timing::lease_time_percent`].
    fn scale(&self, seconds: u32) -> Duration {
        let millis = u64::from(seconds) * 1000 * u64::from(self.lease_time_percent) / 100;
        Duration::from_millis(millis)
    }
}

/// Settings of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    /// The interface, e.g. `eth0`; the caller has set it up.
    pub interface: String,
    /// Its hardware address.
    pub mac: [u8; 6],
    /// The client identifier option (61); `None` sends type 1 (Ethernet) and the MAC.
    pub client_id: Option<Vec<u8>>,
    /// Host name to send (option 12): one DNS label of at most 63 letters, digits and `-`.
    pub hostname: Option<String>,
    /// Where the lease is remembered for INIT-REBOOT at the next start; `None` keeps none.
    pub lease_file: Option<PathBuf>,
    /// Send a RELEASE and remove the address on shutdown (`true`), or leave the lease
    /// configured for whoever comes next (`false`).
    pub release_on_shutdown: bool,
    /// Timers.
    pub timing: Timing,
}

impl DhcpConfig {
    /// Settings with the defaults: MAC-based client identifier, no hostname, no lease file,
    /// release on shutdown, RFC timers.
    pub fn new(interface: impl Into<String>, mac: [u8; 6]) -> DhcpConfig {
        DhcpConfig {
            interface: interface.into(),
            mac,
            client_id: None,
            hostname: None,
            lease_file: None,
            release_on_shutdown: true,
            timing: Timing::default(),
        }
    }

    /// Checks the settings; the first problem found is returned.
    pub fn validate(&self) -> Result<(), DhcpError> {
        let invalid = |problem: String| DhcpError::InvalidConfig {
            interface: self.interface.clone(),
            problem,
        };
        if let Some(hostname) = &self.hostname {
            let label_ok = !hostname.is_empty()
                && hostname.len() <= MAX_HOSTNAME_LEN
                && hostname
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !hostname.starts_with('-')
                && !hostname.ends_with('-');
            if !label_ok {
                return Err(invalid(format!(
                    "hostname {hostname:?} must be 1 to 63 letters, digits and inner '-'"
                )));
            }
        }
        if let Some(id) = &self.client_id
            && !(2..=255).contains(&id.len())
        {
            return Err(invalid(format!(
                "the client identifier has {} bytes, it must have 2 to 255",
                id.len()
            )));
        }
        if self.timing.first_retransmit.is_zero()
            || self.timing.request_attempts == 0
            || self.timing.min_lease.is_zero()
        {
            return Err(invalid(
                "first_retransmit, request_attempts and min_lease must not be zero".into(),
            ));
        }
        Ok(())
    }

    /// The client identifier sent: the configured one or type 1 followed by the MAC.
    fn client_id_bytes(&self) -> Vec<u8> {
        self.client_id.clone().unwrap_or_else(|| {
            let mut id = vec![1];
            id.extend_from_slice(&self.mac);
            id
        })
    }
}

/// Parses a hardware address such as `02:00:00:00:00:01` (the form [`crate::Link::mac`]
/// has).
pub fn parse_mac(text: &str) -> Result<[u8; 6], DhcpError> {
    let invalid = || DhcpError::InvalidMac { text: text.into() };
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or_else(invalid)?;
        if part.len() != 2 {
            return Err(invalid());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
    }
    if parts.next().is_some() {
        return Err(invalid());
    }
    Ok(mac)
}
