//! Interface addresses with a prefix length (`192.0.2.10/24`, `2001:db8::5/64`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a text is not an address with a prefix length. Every variant names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// No `/` and prefix length after the address.
    #[error("{input:?}: missing the /prefix length (as in 192.0.2.10/24)")]
    MissingPrefix {
        /// The text that was parsed.
        input: String,
    },
    /// The part after `/` is not a decimal number.
    #[error("{input:?}: prefix length {prefix:?} is not a number")]
    BadPrefix {
        /// The text that was parsed.
        input: String,
        /// The part after `/`.
        prefix: String,
    },
    /// The prefix length is larger than the address has bits.
    #[error("{input:?}: prefix length {prefix} is out of range 0..={max}")]
    PrefixOutOfRange {
        /// The text that was parsed.
        input: String,
        /// The prefix length as given.
        prefix: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// The part before `/` is not an address of the expected family.
    #[error("{input:?}: {address:?} is not an {family} address")]
    BadAddress {
        /// The text that was parsed.
        input: String,
        /// The part before `/`.
        address: String,
        /// `IPv4`, `IPv6` or `IP`.
        family: &'static str,
    },
}

/// An IPv4 interface address with its prefix length, e.g. `192.0.2.10/24`.
///
/// Host bits may be set: this is the address of an interface, not only a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix_len: u8,
}

/// An IPv6 interface address with its prefix length, e.g. `2001:db8::5/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv6Cidr {
    address: Ipv6Addr,
    prefix_len: u8,
}

/// An IPv4 or IPv6 interface address with its prefix length. Serializes as its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum IpCidr {
    /// An IPv4 address.
    V4(Ipv4Cidr),
    /// An IPv6 address.
    V6(Ipv6Cidr),
}

impl Ipv4Cidr {
    /// `0.0.0.0/0`: every IPv4 address, the destination of a default route.
    pub const ANY: Ipv4Cidr = Ipv4Cidr {
        address: Ipv4Addr::UNSPECIFIED,
        prefix_len: 0,
    };

    /// `address/prefix_len`; fails when `prefix_len` exceeds 32.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Result<Self, CidrError> {
        check_prefix(&format!("{address}/{prefix_len}"), prefix_len, 32)?;
        Ok(Ipv4Cidr {
            address,
            prefix_len,
        })
    }

    /// The interface address.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The prefix length, 0 to 32.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask, e.g. `255.255.255.0` for `/24`.
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask_u32(self.prefix_len))
    }

    /// The network: the address with its host bits cleared, same prefix length.
    pub fn network(&self) -> Ipv4Cidr {
        Ipv4Cidr {
            address: Ipv4Addr::from(self.address.to_bits() & mask_u32(self.prefix_len)),
            prefix_len: self.prefix_len,
        }
    }

    /// Whether `address` is in this network (e.g. whether a gateway is on-link).
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        let mask = mask_u32(self.prefix_len);
        address.to_bits() & mask == self.address.to_bits() & mask
    }
}

impl Ipv6Cidr {
    /// `::/0`: every IPv6 address, the destination of a default route.
    pub const ANY: Ipv6Cidr = Ipv6Cidr {
        address: Ipv6Addr::UNSPECIFIED,
        prefix_len: 0,
    };

    /// `address/prefix_len`; fails when `prefix_len` exceeds 128.
    pub fn new(address: Ipv6Addr, prefix_len: u8) -> Result<Self, CidrError> {
        check_prefix(&format!("{address}/{prefix_len}"), prefix_len, 128)?;
        Ok(Ipv6Cidr {
            address,
            prefix_len,
        })
    }

    /// The interface address.
    pub fn address(&self) -> Ipv6Addr {
        self.address
    }

    /// The prefix length, 0 to 128.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The network: the address with its host bits cleared, same prefix length.
    pub fn network(&self) -> Ipv6Cidr {
        Ipv6Cidr {
            address: Ipv6Addr::from(self.address.to_bits() & mask_u128(self.prefix_len)),
            prefix_len: self.prefix_len,
        }
    }

    /// Whether `address` is in this network.
    pub fn contains(&self, address: Ipv6Addr) -> bool {
        let mask = mask_u128(self.prefix_len);
        address.to_bits() & mask == self.address.to_bits() & mask
    }
}

impl IpCidr {
    /// The interface address.
    pub fn address(&self) -> IpAddr {
        match self {
            IpCidr::V4(cidr) => IpAddr::V4(cidr.address),
            IpCidr::V6(cidr) => IpAddr::V6(cidr.address),
        }
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        match self {
            IpCidr::V4(cidr) => cidr.prefix_len,
            IpCidr::V6(cidr) => cidr.prefix_len,
        }
    }

    /// Whether `address` is in this network; never for an address of the other family.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self, address) {
            (IpCidr::V4(cidr), IpAddr::V4(address)) => cidr.contains(address),
            (IpCidr::V6(cidr), IpAddr::V6(address)) => cidr.contains(address),
            _ => false,
        }
    }
}

fn mask_u32(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

fn mask_u128(prefix_len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix_len))
        .unwrap_or(0)
}

fn check_prefix(input: &str, prefix_len: u8, max: u8) -> Result<(), CidrError> {
    if prefix_len > max {
        return Err(CidrError::PrefixOutOfRange {
            input: input.to_owned(),
            prefix: prefix_len.to_string(),
            max,
        });
    }
    Ok(())
}

/// Splits `input` at `/`, parses the address, and checks the prefix length against the
/// number of bits `max_for` gives for that address.
fn parse_cidr<A: FromStr>(
    input: &str,
    family: &'static str,
    max_for: impl Fn(&A) -> u8,
) -> Result<(A, u8), CidrError> {
    let Some((address_text, prefix_text)) = input.split_once('/') else {
        return Err(CidrError::MissingPrefix {
            input: input.to_owned(),
        });
    };
    let address = address_text
        .parse::<A>()
        .map_err(|_| CidrError::BadAddress {
            input: input.to_owned(),
            address: address_text.to_owned(),
            family,
        })?;
    if prefix_text.is_empty() || !prefix_text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(CidrError::BadPrefix {
            input: input.to_owned(),
            prefix: prefix_text.to_owned(),
        });
    }
    let max = max_for(&address);
    let out_of_range = || CidrError::PrefixOutOfRange {
        input: input.to_owned(),
        prefix: prefix_text.to_owned(),
        max,
    };
    let prefix_len: u8 = prefix_text.parse().map_err(|_| out_of_range())?;
    if prefix_len > max {
        return Err(out_of_range());
    }
    Ok((address, prefix_len))
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, CidrError> {
        let (address, prefix_len) = parse_cidr(input, "IPv4", |_| 32)?;
        Ok(Ipv4Cidr {
            address,
            prefix_len,
        })
    }
}

impl FromStr for Ipv6Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, CidrError> {
        let (address, prefix_len) = parse_cidr(input, "IPv6", |_| 128)?;
        Ok(Ipv6Cidr {
            address,
            prefix_len,
        })
    }
}

impl FromStr for IpCidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, CidrError> {
        let max_for = |address: &IpAddr| if address.is_ipv4() { 32 } else { 128 };
        Ok(match parse_cidr(input, "IP", max_for)? {
            (IpAddr::V4(address), prefix_len) => IpCidr::V4(Ipv4Cidr {
                address,
                prefix_len,
            }),
            (IpAddr::V6(address), prefix_len) => IpCidr::V6(Ipv6Cidr {
                address,
                prefix_len,
            }),
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpCidr::V4(cidr) => cidr.fmt(f),
            IpCidr::V6(cidr) => cidr.fmt(f),
        }
    }
}

macro_rules! text_conversions {
    ($($type:ty),*) => {$(
        impl From<$type> for String {
            fn from(cidr: $type) -> String {
                cidr.to_string()
            }
        }

        impl TryFrom<String> for $type {
            type Error = CidrError;

            fn try_from(text: String) -> Result<Self, CidrError> {
                text.parse()
            }
        }
    )*};
}

text_conversions!(Ipv4Cidr, Ipv6Cidr, IpCidr);

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` as an [`IpCidr`] and compares the error text with `expected`.
    fn check_error(input: &str, expected: &str) {
        let error = input.parse::<IpCidr>().unwrap_err();
        assert_eq!(error.to_string(), expected, "input {input:?}");
    }

    #[test]
    fn parses_both_families() {
        let v4: IpCidr = "192.0.2.10/24".parse().unwrap();
        assert_eq!(v4.address(), "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!(v4.prefix_len(), 24);
        assert_eq!(v4.to_string(), "192.0.2.10/24");
        let v6: IpCidr = "2001:DB8::5/64".parse().unwrap();
        assert_eq!(v6.prefix_len(), 64);
        assert_eq!(v6.to_string(), "2001:db8::5/64");
        assert!(matches!(v6, IpCidr::V6(_)));
        assert_eq!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().prefix_len(), 0);
        assert_eq!("::/128".parse::<Ipv6Cidr>().unwrap().prefix_len(), 128);
        assert_eq!("10.0.0.1/08".parse::<Ipv4Cidr>().unwrap().prefix_len(), 8);
    }

    #[test]
    fn malformed_inputs_name_the_input_and_the_problem() {
        check_error(
            "192.0.2.10",
            "\"192.0.2.10\": missing the /prefix length (as in 192.0.2.10/24)",
        );
        check_error(
            "192.0.2.10/",
            "\"192.0.2.10/\": prefix length \"\" is not a number",
        );
        check_error(
            "192.0.2.10/+8",
            "\"192.0.2.10/+8\": prefix length \"+8\" is not a number",
        );
        check_error(
            "192.0.2.10/24/1",
            "\"192.0.2.10/24/1\": prefix length \"24/1\" is not a number",
        );
        check_error(
            "192.0.2.10/33",
            "\"192.0.2.10/33\": prefix length 33 is out of range 0..=32",
        );
        check_error(
            "192.0.2.10/4294967296",
            "\"192.0.2.10/4294967296\": prefix length 4294967296 is out of range 0..=32",
        );
        check_error(
            "2001:db8::1/129",
            "\"2001:db8::1/129\": prefix length 129 is out of range 0..=128",
        );
        check_error(
            "192.0.2.300/24",
            "\"192.0.2.300/24\": \"192.0.2.300\" is not an IP address",
        );
        check_error(
            " 192.0.2.1/24",
            "\" 192.0.2.1/24\": \" 192.0.2.1\" is not an IP address",
        );
        check_error(
            "fe80::1%eth0/64",
            "\"fe80::1%eth0/64\": \"fe80::1%eth0\" is not an IP address",
        );
        check_error("", "\"\": missing the /prefix length (as in 192.0.2.10/24)");
    }

    #[test]
    fn family_specific_parsers_reject_the_other_family() {
        let error = "2001:db8::1/64".parse::<Ipv4Cidr>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"2001:db8::1/64\": \"2001:db8::1\" is not an IPv4 address"
        );
        let error = "192.0.2.1/24".parse::<Ipv6Cidr>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"192.0.2.1/24\": \"192.0.2.1\" is not an IPv6 address"
        );
        assert!(matches!(
            "192.0.2.1/40".parse::<Ipv4Cidr>(),
            Err(CidrError::PrefixOutOfRange { max: 32, .. })
        ));
    }

    #[test]
    fn constructors_check_the_prefix() {
        let cidr = Ipv4Cidr::new(Ipv4Addr::new(192, 0, 2, 10), 24).unwrap();
        assert_eq!(cidr.to_string(), "192.0.2.10/24");
        assert_eq!(
            Ipv4Cidr::new(Ipv4Addr::new(192, 0, 2, 10), 33)
                .unwrap_err()
                .to_string(),
            "\"192.0.2.10/33\": prefix length 33 is out of range 0..=32"
        );
        assert!(Ipv6Cidr::new(Ipv6Addr::LOCALHOST, 128).is_ok());
        assert!(matches!(
            Ipv6Cidr::new(Ipv6Addr::LOCALHOST, 129),
            Err(CidrError::PrefixOutOfRange { max: 128, .. })
        ));
    }

    #[test]
    fn networks_masks_and_membership() {
        let cidr: Ipv4Cidr = "192.0.2.10/24".parse().unwrap();
        assert_eq!(cidr.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(cidr.network().to_string(), "192.0.2.0/24");
        assert!(cidr.contains(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(!cidr.contains(Ipv4Addr::new(192, 0, 3, 1)));
        let everything: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert_eq!(everything.netmask(), Ipv4Addr::UNSPECIFIED);
        assert!(everything.contains(Ipv4Addr::BROADCAST));
        let host: Ipv4Cidr = "192.0.2.10/32".parse().unwrap();
        assert_eq!(host.netmask(), Ipv4Addr::BROADCAST);
        assert!(!host.contains(Ipv4Addr::new(192, 0, 2, 11)));

        let v6: Ipv6Cidr = "2001:db8::5/64".parse().unwrap();
        assert_eq!(v6.address(), "2001:db8::5".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v6.network().to_string(), "2001:db8::/64");
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(
            "::/0"
                .parse::<Ipv6Cidr>()
                .unwrap()
                .contains(Ipv6Addr::LOCALHOST)
        );

        let any: IpCidr = "192.0.2.10/24".parse().unwrap();
        assert!(any.contains("192.0.2.99".parse().unwrap()));
        assert!(!any.contains("2001:db8::1".parse().unwrap()));
        let any6: IpCidr = "2001:db8::5/64".parse().unwrap();
        assert!(any6.contains("2001:db8::1".parse().unwrap()));
        assert_eq!(any6.address(), "2001:db8::5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn serde_uses_the_text_form() {
        let cidr: IpCidr = "192.0.2.10/24".parse().unwrap();
        assert_eq!(serde_json::to_string(&cidr).unwrap(), "\"192.0.2.10/24\"");
        let back: IpCidr = serde_json::from_str("\"2001:db8::5/64\"").unwrap();
        assert_eq!(back.to_string(), "2001:db8::5/64");
        let v4: Ipv4Cidr = serde_json::from_str("\"10.0.0.1/8\"").unwrap();
        assert_eq!(serde_json::to_string(&v4).unwrap(), "\"10.0.0.1/8\"");
        let v6: Ipv6Cidr = serde_json::from_str("\"::1/128\"").unwrap();
        assert_eq!(serde_json::to_string(&v6).unwrap(), "\"::1/128\"");
        let error = serde_json::from_str::<IpCidr>("\"10.0.0.1\"").unwrap_err();
        assert!(
            error.to_string().contains("missing the /prefix length"),
            "{error}"
        );
    }
}
