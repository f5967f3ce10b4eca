//! Network configuration of a Linux host: links, addresses, routes, bridges, VLANs, bonds, DNS,
//! a DHCPv4 client and an SNTP client that keeps the clock.
//!
//! `mfv-net` owns the network model of the host and applying it to the kernel and to the
//! files the resolver reads. It provides:
//!
//! - interface addresses with their prefix length: [`IpCidr`], [`Ipv4Cidr`], [`Ipv6Cidr`],
//!   parsed from text like `192.0.2.10/24` with errors that name the input and the problem;
//! - DNS settings ([`DnsConfig`]) rendered as `resolv.conf` and written atomically with
//!   [`write_resolv_conf`];
//! - [`Netlink`], a routing netlink handle (rtnetlink, async on tokio) for one network
//!   namespace: the [`Link`] table, up/down, MTU, carrier waits, addresses, [`Route`]s,
//!   bridges (with [`Netlink::move_to_bridge`], which keeps a host's address when its network
//!   card becomes a bridge port), VLAN sub-interfaces and active-backup bonds;
//! - [`NetworkState`], the desired state, and [`apply`]: snapshot, change, re-read and verify
//!   ([`Difference`]), restore the snapshot on failure; [`apply_provisional`] restores it by
//!   itself unless confirmed in time;
//! - [`dhcp`], a DHCPv4 client that configures an interface with its lease;
//! - [`sntp`], an SNTP client that steps and slews the system clock from NTP servers.
//!
//! # What this crate never does
//!
//! It never reads configuration files or the kernel command line: callers hand it typed
//! settings. It never shells out to `ip`, `dhclient` or other tools. Every path it writes is a
//! parameter; it does not assume `/etc/resolv.conf`.
//!
//! ```
//! use mfv_net::{DnsConfig, Ipv4Cidr};
//!
//! let address: Ipv4Cidr = "192.0.2.10/24".parse()?;
//! assert!(address.contains("192.0.2.1".parse()?));
//!
//! let dns = DnsConfig {
//!     nameservers: vec!["192.0.2.1".parse()?],
//!     search: vec!["example.org".into()],
//!     options: vec![],
//! };
//! assert!(dns.render()?.contains("nameserver 192.0.2.1\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod apply;
mod cidr;
pub mod dhcp;
mod dns;
mod netlink;
pub mod sntp;
mod state;

pub use apply::{
    ApplyError, ApplyOptions, ApplyReport, ProvisionalApply, ProvisionalOutcome, RollbackReport,
    Snapshot, apply, apply_provisional, current_state, observe, restore,
};
pub use cidr::{CidrError, IpCidr, Ipv4Cidr, Ipv6Cidr};
pub use dns::{DnsConfig, DnsError, MAX_NAMESERVERS, write_resolv_conf};
pub use mfv_linux::atomic_file::WriteStep;
pub use mfv_linux::{InterfaceNameError, OperState, check_interface_name};
pub use netlink::{Link, MovedConfig, NetError, Netlink, Route};
pub use state::{
    Difference, InterfaceConfig, InterfaceKind, NetworkState, ObservedLink, differences,
};
