//! `mfv.net=`: network provisioning for a headless first boot, written on the command line.
//!
//! Forms: `dhcp`, `IFACE:dhcp`, `[IFACE:]ADDRESS/PREFIX[,gw=GATEWAY][,dns=SERVER]...` with IPv4
//! or IPv6 addresses (`dns=` may repeat). Without an interface the caller picks one (the first
//! NIC with carrier). An IPv6 address without interface is recognised as a whole before the
//! text is split at its first `:`; Linux interface names cannot contain `:`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use mfv_linux::{InterfaceNameError, check_interface_name};

/// Network set-up requested with `mfv.net=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetProvisioning {
    /// Ask a DHCP server, on the named interface or on one the caller picks.
    Dhcp {
        /// The interface, or `None` to let the caller pick.
        interface: Option<String>,
    },
    /// A static address.
    Static(StaticAddress),
}

/// A static address with its optional gateway and DNS servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticAddress {
    /// The interface, or `None` to let the caller pick.
    pub interface: Option<String>,
    /// The host's address.
    pub address: IpAddr,
    /// The prefix length of the address's network.
    pub prefix_len: u8,
    /// The default gateway, in the same address family as `address`.
    pub gateway: Option<IpAddr>,
    /// DNS servers, in the order given.
    pub dns: Vec<IpAddr>,
}

/// Why an `mfv.net=` value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetSpecError {
    /// None of the accepted forms.
    #[error("expected dhcp, IFACE:dhcp or [IFACE:]ADDRESS/PREFIX[,gw=GATEWAY][,dns=SERVER]...")]
    NotNetSpec,
    /// An interface name Linux would not accept.
    #[error(transparent)]
    BadInterface(#[from] InterfaceNameError),
    /// `ADDRESS/PREFIX` is not an address with a prefix length.
    #[error(
        "{0:?} is not an address with a prefix length, such as 192.0.2.10/24 or 2001:db8::10/64"
    )]
    BadAddress(String),
    /// The prefix length is out of range for the address family.
    #[error("prefix length {prefix_len} is not between 1 and {max}")]
    BadPrefixLen {
        /// The prefix length given.
        prefix_len: u8,
        /// The largest one for the family (32 or 128).
        max: u8,
    },
    /// An unspecified, multicast or broadcast address where a host address is needed.
    #[error("{0} cannot be used as a host address")]
    UnusableAddress(IpAddr),
    /// `gw=` or `dns=` is not an IP address.
    #[error("{option}={value:?} is not an IP address")]
    BadOptionAddress {
        /// `gw` or `dns`.
        option: &'static str,
        /// The value given.
        value: String,
    },
    /// The gateway is IPv4 and the address IPv6, or the other way round.
    #[error("gateway {gateway} is not in the address family of {address}")]
    GatewayFamily {
        /// The gateway given.
        gateway: IpAddr,
        /// The host address given.
        address: IpAddr,
    },
    /// `gw=` given twice.
    #[error("gw= given more than once")]
    DuplicateGateway,
    /// An option other than `gw=` and `dns=`.
    #[error("unknown option {0:?} (expected gw= or dns=)")]
    UnknownOption(String),
    /// `dhcp` followed by options.
    #[error("dhcp takes no options")]
    DhcpWithOptions,
}

impl fmt::Display for NetProvisioning {
    /// The `mfv.net=` value that requests this set-up; it parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetProvisioning::Dhcp { interface: None } => f.write_str("dhcp"),
            NetProvisioning::Dhcp {
                interface: Some(interface),
            } => write!(f, "{interface}:dhcp"),
            NetProvisioning::Static(address) => {
                if let Some(interface) = &address.interface {
                    write!(f, "{interface}:")?;
                }
                write!(f, "{}/{}", address.address, address.prefix_len)?;
                if let Some(gateway) = address.gateway {
                    write!(f, ",gw={gateway}")?;
                }
                for server in &address.dns {
                    write!(f, ",dns={server}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for NetProvisioning {
    type Err = NetSpecError;

    fn from_str(text: &str) -> Result<NetProvisioning, NetSpecError> {
        let mut parts = text.split(',');
        let head = parts.next().unwrap_or_default();
        let options: Vec<&str> = parts.collect();
        let (interface, spec) = if head == "dhcp" || parse_address_prefix(head).is_ok() {
            (None, head)
        } else {
            let (interface, spec) = head.split_once(':').ok_or(NetSpecError::NotNetSpec)?;
            (Some(parse_interface(interface)?), spec)
        };
        if spec == "dhcp" {
            return if options.is_empty() {
                Ok(NetProvisioning::Dhcp { interface })
            } else {
                Err(NetSpecError::DhcpWithOptions)
            };
        }
        let (address, prefix_len) = parse_address_prefix(spec)?;
        let mut gateway = None;
        let mut dns = Vec::new();
        for option in options {
            if let Some(value) = option.strip_prefix("gw=") {
                if gateway.is_some() {
                    return Err(NetSpecError::DuplicateGateway);
                }
                let parsed = parse_option_address("gw", value)?;
                if parsed.is_ipv4() != address.is_ipv4() {
                    return Err(NetSpecError::GatewayFamily {
                        gateway: parsed,
                        address,
                    });
                }
                gateway = Some(parsed);
            } else if let Some(value) = option.strip_prefix("dns=") {
                dns.push(parse_option_address("dns", value)?);
            } else {
                return Err(NetSpecError::UnknownOption(option.to_string()));
            }
        }
        Ok(NetProvisioning::Static(StaticAddress {
            interface,
            address,
            prefix_len,
            gateway,
            dns,
        }))
    }
}

fn parse_interface(name: &str) -> Result<String, NetSpecError> {
    check_interface_name(name)?;
    Ok(name.to_string())
}

fn parse_address_prefix(text: &str) -> Result<(IpAddr, u8), NetSpecError> {
    let bad = || NetSpecError::BadAddress(text.to_string());
    let (address, prefix_len) = text.split_once('/').ok_or_else(bad)?;
    let address: IpAddr = address.parse().map_err(|_| bad())?;
    if !prefix_len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let prefix_len: u8 = prefix_len.parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix_len == 0 || prefix_len > max {
        return Err(NetSpecError::BadPrefixLen { prefix_len, max });
    }
    if !usable(address) {
        return Err(NetSpecError::UnusableAddress(address));
    }
    Ok((address, prefix_len))
}

fn parse_option_address(option: &'static str, value: &str) -> Result<IpAddr, NetSpecError> {
    let address: IpAddr = value.parse().map_err(|_| NetSpecError::BadOptionAddress {
        option,
        value: value.to_string(),
    })?;
    if usable(address) {
        Ok(address)
    } else {
        Err(NetSpecError::UnusableAddress(address))
    }
}

/// Whether `address` can be a host, gateway or server address.
fn usable(address: IpAddr) -> bool {
    let broadcast = matches!(address, IpAddr::V4(v4) if v4.is_broadcast());
    !address.is_unspecified() && !address.is_multicast() && !broadcast
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<NetProvisioning, &str>) {
        let parsed = input.parse::<NetProvisioning>().map_err(|e| e.to_string());
        assert_eq!(parsed, expected.map_err(str::to_string), "input: {input:?}");
        if let Ok(spec) = parsed {
            let written = spec.to_string();
            assert_eq!(written.parse(), Ok(spec), "written back as {written:?}");
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn static_address(
        interface: Option<&str>,
        address: &str,
        prefix_len: u8,
        gateway: Option<&str>,
        dns: &[&str],
    ) -> NetProvisioning {
        NetProvisioning::Static(StaticAddress {
            interface: interface.map(str::to_string),
            address: ip(address),
            prefix_len,
            gateway: gateway.map(ip),
            dns: dns.iter().map(|d| ip(d)).collect(),
        })
    }

    #[test]
    fn dhcp_forms() {
        check("dhcp", Ok(NetProvisioning::Dhcp { interface: None }));
        check(
            "enp0s3:dhcp",
            Ok(NetProvisioning::Dhcp {
                interface: Some("enp0s3".into()),
            }),
        );
    }

    #[test]
    fn static_ipv4() {
        check(
            "eth0:192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53",
            Ok(static_address(
                Some("eth0"),
                "192.0.2.10",
                24,
                Some("192.0.2.1"),
                &["192.0.2.53"],
            )),
        );
        check(
            "192.0.2.10/24",
            Ok(static_address(None, "192.0.2.10", 24, None, &[])),
        );
        check(
            "eth0:192.0.2.10/32,dns=192.0.2.53,dns=198.51.100.53",
            Ok(static_address(
                Some("eth0"),
                "192.0.2.10",
                32,
                None,
                &["192.0.2.53", "198.51.100.53"],
            )),
        );
    }

    #[test]
    fn static_ipv6() {
        check(
            "eth0:2001:db8::10/64,gw=fe80::1,dns=2001:db8::53",
            Ok(static_address(
                Some("eth0"),
                "2001:db8::10",
                64,
                Some("fe80::1"),
                &["2001:db8::53"],
            )),
        );
        check(
            "2001:db8::10/64,gw=2001:db8::1",
            Ok(static_address(
                None,
                "2001:db8::10",
                64,
                Some("2001:db8::1"),
                &[],
            )),
        );
        check(
            "eth0:2001:db8::10/128",
            Ok(static_address(Some("eth0"), "2001:db8::10", 128, None, &[])),
        );
    }

    #[test]
    fn invalid_specs() {
        let not_spec =
            "expected dhcp, IFACE:dhcp or [IFACE:]ADDRESS/PREFIX[,gw=GATEWAY][,dns=SERVER]...";
        let cases: &[(&str, &str)] = &[
            ("", not_spec),
            ("eth0", not_spec),
            ("static", not_spec),
            ("192.0.2.10", not_spec),
            (":dhcp", "the interface name is empty"),
            (
                "averyveryverylongname:dhcp",
                r#""averyveryverylongname" is 21 bytes long; interface names have at most 15"#,
            ),
            ("..:dhcp", r#"".." is not a valid interface name"#),
            (
                "a/b:dhcp",
                r#""a/b" contains '/', which interface names cannot"#,
            ),
            ("eth0:dhcp,dns=192.0.2.53", "dhcp takes no options"),
            (
                "eth0:192.0.2.10",
                r#""192.0.2.10" is not an address with a prefix length, such as 192.0.2.10/24 or 2001:db8::10/64"#,
            ),
            (
                "eth0:192.0.2.300/24",
                r#""192.0.2.300/24" is not an address with a prefix length, such as 192.0.2.10/24 or 2001:db8::10/64"#,
            ),
            (
                "eth0:192.0.2.1/+8",
                r#""192.0.2.1/+8" is not an address with a prefix length, such as 192.0.2.10/24 or 2001:db8::10/64"#,
            ),
            (
                "eth0:192.0.2.1/999",
                r#""192.0.2.1/999" is not an address with a prefix length, such as 192.0.2.10/24 or 2001:db8::10/64"#,
            ),
            (
                "eth0:192.0.2.10/33",
                "prefix length 33 is not between 1 and 32",
            ),
            (
                "eth0:192.0.2.10/0",
                "prefix length 0 is not between 1 and 32",
            ),
            (
                "eth0:2001:db8::1/129",
                "prefix length 129 is not between 1 and 128",
            ),
            ("eth0:0.0.0.0/8", "0.0.0.0 cannot be used as a host address"),
            (
                "eth0:224.0.0.1/4",
                "224.0.0.1 cannot be used as a host address",
            ),
            (
                "eth0:255.255.255.255/32",
                "255.255.255.255 cannot be used as a host address",
            ),
            (
                "eth0:ff02::1/64",
                "ff02::1 cannot be used as a host address",
            ),
            (
                "eth0:192.0.2.10/24,gw=router",
                r#"gw="router" is not an IP address"#,
            ),
            ("eth0:192.0.2.10/24,dns=", r#"dns="" is not an IP address"#),
            (
                "eth0:192.0.2.10/24,dns=0.0.0.0",
                "0.0.0.0 cannot be used as a host address",
            ),
            (
                "eth0:192.0.2.10/24,gw=2001:db8::1",
                "gateway 2001:db8::1 is not in the address family of 192.0.2.10",
            ),
            (
                "eth0:2001:db8::10/64,gw=192.0.2.1",
                "gateway 192.0.2.1 is not in the address family of 2001:db8::10",
            ),
            (
                "eth0:192.0.2.10/24,gw=192.0.2.1,gw=192.0.2.2",
                "gw= given more than once",
            ),
            (
                "eth0:192.0.2.10/24,mtu=9000",
                r#"unknown option "mtu=9000" (expected gw= or dns=)"#,
            ),
            (
                "eth0:192.0.2.10/24,",
                r#"unknown option "" (expected gw= or dns=)"#,
            ),
        ];
        for (input, expected) in cases {
            check(input, Err(expected));
        }
    }
}
