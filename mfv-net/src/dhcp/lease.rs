//! A DHCP lease: what the server granted, built from its ACK, and the lease file that
//! remembers it across restarts for INIT-REBOOT.

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use dhcproto::v4::{DhcpOption, OptionCode};
use serde::{Deserialize, Serialize};

use super::DhcpError;
use super::packet::{IgnoreReason, Reply, is_usable_unicast};
use crate::cidr::Ipv4Cidr;
use crate::dns::{DnsConfig, MAX_NAMESERVERS};
use mfv_linux::atomic_file::{WriteFailure, replace_file};

/// Version of the lease file format written by [`save_lease`].
const LEASE_FILE_VERSION: u32 = 1;

/// Smallest MTU an IPv4 interface may have (RFC 791); a smaller option value is ignored.
const MIN_MTU: u16 = 68;

/// An address lease granted by a DHCP server, with the settings that came with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The leased address with the prefix length from the subnet mask option.
    pub address: Ipv4Cidr,
    /// The server that granted it (its server identifier).
    pub server: Ipv4Addr,
    /// Routers in order of preference; the first becomes the default gateway.
    pub routers: Vec<Ipv4Addr>,
    /// DNS servers, at most [`MAX_NAMESERVERS`] (more are dropped).
    pub dns_servers: Vec<Ipv4Addr>,
    /// The domain name, when the server sent one that is a valid search domain.
    pub domain: Option<String>,
    /// Interface MTU, when the server sent one of at least 68.
    pub mtu: Option<u16>,
    /// Lease time in seconds as the server sent it (`u32::MAX` means infinite).
    pub lease_seconds: u32,
    /// Renewal time T1 in seconds (the server's, or half the lease).
    pub renew_seconds: u32,
    /// Rebinding time T2 in seconds (the server's, or 7/8 of the lease).
    pub rebind_seconds: u32,
}

impl Lease {
    /// The resolver settings this lease gives: its DNS servers and its domain as search
    /// domain.
    pub fn dns_config(&self) -> DnsConfig {
        DnsConfig {
            nameservers: self
                .dns_servers
                .iter()
                .map(|&server| server.into())
                .collect(),
            search: self.domain.iter().cloned().collect(),
            options: vec![],
        }
    }

    /// Builds a lease from an ACK; `server` is the ACK's server identifier or, when it has
    /// none, the server the request went to.
    pub(crate) fn from_ack(reply: &Reply, server: Ipv4Addr) -> Result<Lease, IgnoreReason> {
        let message = &reply.message;
        let address = message.yiaddr();
        if !is_usable_unicast(address) {
            return Err(IgnoreReason::InvalidAddress);
        }
        let options = message.opts();
        let prefix_len = match options.get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(mask)) => {
                prefix_of_mask(*mask).ok_or(IgnoreReason::InvalidSubnetMask)?
            }
            _ => classful_prefix(address),
        };
        let address =
            Ipv4Cidr::new(address, prefix_len).map_err(|_| IgnoreReason::InvalidSubnetMask)?;
        let lease_seconds = match options.get(OptionCode::AddressLeaseTime) {
            Some(DhcpOption::AddressLeaseTime(seconds)) => *seconds,
            _ => return Err(IgnoreReason::NoLeaseTime),
        };
        let server_t1 = match options.get(OptionCode::Renewal) {
            Some(DhcpOption::Renewal(seconds)) => Some(*seconds),
            _ => None,
        };
        let server_t2 = match options.get(OptionCode::Rebinding) {
            Some(DhcpOption::Rebinding(seconds)) => Some(*seconds),
            _ => None,
        };
        let (renew_seconds, rebind_seconds) = renewal_times(lease_seconds, server_t1, server_t2);
        let routers = match options.get(OptionCode::Router) {
            Some(DhcpOption::Router(routers)) => routers
                .iter()
                .copied()
                .filter(|&router| is_usable_unicast(router))
                .collect(),
            _ => vec![],
        };
        let dns_servers = match options.get(OptionCode::DomainNameServer) {
            Some(DhcpOption::DomainNameServer(servers)) => servers
                .iter()
                .copied()
                .filter(|&server| is_usable_unicast(server))
                .take(MAX_NAMESERVERS)
                .collect(),
            _ => vec![],
        };
        let domain = match options.get(OptionCode::DomainName) {
            Some(DhcpOption::DomainName(domain)) => {
                let domain = domain.trim_end_matches('\0').to_owned();
                let as_search = DnsConfig {
                    search: vec![domain.clone()],
                    ..DnsConfig::default()
                };
                as_search.validate().is_ok().then_some(domain)
            }
            _ => None,
        };
        let mtu = match options.get(OptionCode::InterfaceMtu) {
            Some(DhcpOption::InterfaceMtu(mtu)) if *mtu >= MIN_MTU => Some(*mtu),
            _ => None,
        };
        Ok(Lease {
            address,
            server,
            routers,
            dns_servers,
            domain,
            mtu,
            lease_seconds,
            renew_seconds,
            rebind_seconds,
        })
    }
}

/// T1 and T2 from the server's values, or the RFC 2131 defaults (1/2 and 7/8 of the lease),
/// kept in order T1 <= T2 <= lease.
fn renewal_times(lease: u32, t1: Option<u32>, t2: Option<u32>) -> (u32, u32) {
    let lease_u64 = u64::from(lease);
    let default_t2 = u32::try_from(lease_u64 * 7 / 8).unwrap_or(lease);
    let t2 = t2.unwrap_or(default_t2).min(lease);
    let t1 = t1.unwrap_or(lease / 2).min(t2);
    (t1, t2)
}

/// The prefix length of a contiguous mask such as 255.255.255.0.
fn prefix_of_mask(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let prefix = bits.leading_ones();
    (bits.checked_shl(prefix).unwrap_or(0) == 0).then_some(prefix as u8)
}

/// The historical class prefix of `address`, used when a server sends no subnet mask.
fn classful_prefix(address: Ipv4Addr) -> u8 {
    match address.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// The lease file's contents: a version, the interface and the lease.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseFile {
    version: u32,
    interface: String,
    lease: Lease,
}

/// Writes `lease` of `interface` to `path` atomically (JSON with a format version), so a
/// later start can ask for the same address with INIT-REBOOT.
pub fn save_lease(path: &Path, interface: &str, lease: &Lease) -> Result<(), DhcpError> {
    let file = LeaseFile {
        version: LEASE_FILE_VERSION,
        interface: interface.to_owned(),
        lease: lease.clone(),
    };
    // A struct of strings and numbers always serializes.
    let mut text = serde_json::to_string_pretty(&file).unwrap_or_default();
    text.push('\n');
    replace_file(path, text.as_bytes(), 0o600).map_err(|WriteFailure { step, source }| {
        DhcpError::SaveLease {
            path: path.to_owned(),
            step,
            source,
        }
    })
}

/// Reads a lease saved by [`save_lease`] for `interface`. A missing file is `Ok(None)`; a
/// file of another format version, of another interface or not parseable is an error.
pub fn load_lease(path: &Path, interface: &str) -> Result<Option<Lease>, DhcpError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DhcpError::ReadLease {
                path: path.to_owned(),
                source,
            });
        }
    };
    let invalid = |problem: String| DhcpError::InvalidLeaseFile {
        path: path.to_owned(),
        problem,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| invalid(error.to_string()))?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(LEASE_FILE_VERSION)) {
        return Err(invalid(format!(
            "format version {} is not the supported version {LEASE_FILE_VERSION}",
            version.map_or_else(|| "missing".to_owned(), |v| v.to_string())
        )));
    }
    let file: LeaseFile =
        serde_json::from_value(value).map_err(|error| invalid(error.to_string()))?;
    if file.interface != interface {
        return Err(invalid(format!(
            "the lease is for interface {}, not {interface}",
            file.interface
        )));
    }
    Ok(Some(file.lease))
}

#[cfg(test)]
mod tests {
    use dhcproto::v4::MessageType;

    use super::*;
    use crate::dhcp::packet::decode_reply;
    use crate::dhcp::packet::tests::{identity, reply_bytes};

    fn ack(edit: impl FnOnce(&mut dhcproto::v4::Message)) -> Result<Lease, IgnoreReason> {
        let bytes = reply_bytes(MessageType::Ack, |message| {
            let options = message.opts_mut();
            options.insert(DhcpOption::AddressLeaseTime(600));
            options.insert(DhcpOption::SubnetMask("255.255.255.0".parse().unwrap()));
            edit(message);
        });
        let reply = decode_reply(&bytes, &identity(), 9).unwrap();
        Lease::from_ack(&reply, "192.0.2.1".parse().unwrap())
    }

    pub(crate) fn sample_lease() -> Lease {
        Lease {
            address: "192.0.2.50/24".parse().unwrap(),
            server: "192.0.2.1".parse().unwrap(),
            routers: vec!["192.0.2.1".parse().unwrap()],
            dns_servers: vec!["192.0.2.53".parse().unwrap()],
            domain: Some("example.org".into()),
            mtu: Some(1400),
            lease_seconds: 600,
            renew_seconds: 300,
            rebind_seconds: 525,
        }
    }

    #[test]
    fn an_ack_with_every_option_becomes_a_lease() {
        let lease = ack(|message| {
            let options = message.opts_mut();
            options.insert(DhcpOption::Router(vec!["192.0.2.1".parse().unwrap()]));
            options.insert(DhcpOption::DomainNameServer(vec![
                "192.0.2.53".parse().unwrap(),
            ]));
            options.insert(DhcpOption::DomainName("example.org".into()));
            options.insert(DhcpOption::InterfaceMtu(1400));
        })
        .unwrap();
        assert_eq!(lease, sample_lease());
        assert_eq!(
            lease.dns_config().render().unwrap(),
            "# Generated by mfv-net; changes here are overwritten.\n\
             nameserver 192.0.2.53\nsearch example.org\n"
        );
    }

    #[test]
    fn server_values_are_sanitized() {
        let lease = ack(|message| {
            let options = message.opts_mut();
            options.insert(DhcpOption::DomainNameServer(vec![
                "0.0.0.0".parse().unwrap(),
                "192.0.2.1".parse().unwrap(),
                "192.0.2.2".parse().unwrap(),
                "192.0.2.3".parse().unwrap(),
                "192.0.2.4".parse().unwrap(),
            ]));
            options.insert(DhcpOption::DomainName(
                "example.org\nnameserver 203.0.113.9".into(),
            ));
            options.insert(DhcpOption::InterfaceMtu(40));
            options.insert(DhcpOption::Renewal(900));
            options.insert(DhcpOption::Rebinding(800));
        })
        .unwrap();
        assert_eq!(lease.dns_servers.len(), 3);
        assert_eq!(
            lease.dns_servers[0],
            "192.0.2.1".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(lease.domain, None);
        assert_eq!(lease.mtu, None);
        assert_eq!((lease.renew_seconds, lease.rebind_seconds), (600, 600));
    }

    #[test]
    fn bad_acks_are_refused_with_a_reason() {
        assert_eq!(
            ack(|m| {
                m.set_yiaddr(Ipv4Addr::BROADCAST);
            }),
            Err(IgnoreReason::InvalidAddress)
        );
        assert_eq!(
            ack(|m| {
                m.opts_mut()
                    .insert(DhcpOption::SubnetMask("255.0.255.0".parse().unwrap()));
            }),
            Err(IgnoreReason::InvalidSubnetMask)
        );
        assert_eq!(
            ack(|m| {
                m.opts_mut().remove(OptionCode::AddressLeaseTime);
            }),
            Err(IgnoreReason::NoLeaseTime)
        );
    }

    #[test]
    fn masks_and_defaults() {
        assert_eq!(prefix_of_mask("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(prefix_of_mask("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(prefix_of_mask("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(prefix_of_mask("255.0.0.255".parse().unwrap()), None);
        let without_mask = ack(|m| {
            m.opts_mut().remove(OptionCode::SubnetMask);
        })
        .unwrap();
        assert_eq!(without_mask.address.prefix_len(), 24);
        assert_eq!(classful_prefix("10.0.0.1".parse().unwrap()), 8);
        assert_eq!(classful_prefix("172.16.0.1".parse().unwrap()), 16);
        assert_eq!(
            renewal_times(u32::MAX, None, None),
            (u32::MAX / 2, 3_758_096_383)
        );
        assert_eq!(renewal_times(100, Some(10), None), (10, 87));
    }

    #[test]
    fn a_saved_lease_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eth0.lease");
        assert_eq!(load_lease(&path, "eth0").unwrap(), None);
        save_lease(&path, "eth0", &sample_lease()).unwrap();
        assert_eq!(load_lease(&path, "eth0").unwrap(), Some(sample_lease()));
        let error = load_lease(&path, "eth1").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "lease file {} is invalid: the lease is for interface eth0, not eth1",
                path.display()
            )
        );
    }

    #[test]
    fn unreadable_or_foreign_lease_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lease");
        std::fs::write(&path, "{\"version\": 2}").unwrap();
        let error = load_lease(&path, "eth0").unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("format version 2 is not the supported version 1"),
            "{error}"
        );
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(
            load_lease(&path, "eth0"),
            Err(DhcpError::InvalidLeaseFile { .. })
        ));
        let error = load_lease(dir.path(), "eth0").unwrap_err();
        assert!(matches!(error, DhcpError::ReadLease { .. }), "{error:?}");
        let error =
            save_lease(&dir.path().join("missing/lease"), "eth0", &sample_lease()).unwrap_err();
        assert!(matches!(error, DhcpError::SaveLease { .. }), "{error:?}");
    }
}
