//! Ethernet MAC addresses of VM NICs.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet address, written `52:54:00:12:34:56` (case-insensitive when parsed,
/// lowercase when printed, as libvirt does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddress([u8; 6]);

/// A text that is not six colon-separated pairs of hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a MAC address like 52:54:00:12:34:56")]
pub struct InvalidMacAddress {
    /// The text that was parsed.
    pub input: String,
}

impl MacAddress {
    /// The address from its six octets.
    pub fn new(octets: [u8; 6]) -> Self {
        MacAddress(octets)
    }

    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Group (multicast or broadcast) addresses have the lowest bit of the first octet set;
    /// a NIC cannot use one.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// `00:00:00:00:00:00`, which means "no address".
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
}

impl FromStr for MacAddress {
    type Err = InvalidMacAddress;

    fn from_str(input: &str) -> Result<Self, InvalidMacAddress> {
        let invalid = || InvalidMacAddress {
            input: input.to_owned(),
        };
        let mut octets = [0u8; 6];
        let mut parts = input.split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 || !part.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(MacAddress(octets))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lowercase() {
        let mac: MacAddress = "52:54:00:AB:cd:0F".parse().unwrap();
        assert_eq!(mac.octets(), [0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f]);
        assert_eq!(mac.to_string(), "52:54:00:ab:cd:0f");
        assert_eq!(MacAddress::new(mac.octets()), mac);
    }

    #[test]
    fn rejects_malformed_text() {
        for input in [
            "",
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "52-54-00-12-34-56",
            "52:54:00:12:34:5",
            "52:54:00:12:34:5g",
            "52:54:00:12:34:+5",
            "525400123456",
            "52:54:00:12:34:56:",
        ] {
            let error = input.parse::<MacAddress>().unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("{input:?} is not a MAC address like 52:54:00:12:34:56")
            );
        }
    }

    #[test]
    fn multicast_and_zero() {
        let parse = |text: &str| text.parse::<MacAddress>().unwrap();
        assert!(parse("01:00:5e:00:00:01").is_multicast());
        assert!(parse("ff:ff:ff:ff:ff:ff").is_multicast());
        assert!(!parse("52:54:00:12:34:56").is_multicast());
        assert!(parse("00:00:00:00:00:00").is_zero());
        assert!(!parse("00:00:00:00:00:01").is_zero());
    }
}
