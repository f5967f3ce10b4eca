//! Whether a host name or address stays on this machine: traffic to it goes through the
//! loopback interface and never reaches a network, so a protocol without TLS can be used to
//! reach it without anyone on the wire reading or forging the exchange.
//!
//! Loopback is 127.0.0.0/8 (also written as the IPv4-mapped `::ffff:127.x.y.z`), `::1`, and
//! the name `localhost`, which every resolver on Linux answers with those addresses. No other
//! name counts, whatever it resolves to now: a name's answer can change between the check
//! and the connection.

use std::net::IpAddr;

/// The one host name that counts as loopback (compared without regard to case).
pub const LOCALHOST: &str = "localhost";

/// `true` when `host` (a name, an IPv4 address, or an IPv6 address with or without
/// brackets) is a loopback address or `localhost`.
///
/// ```
/// use mfv_linux::loopback::is_loopback_host;
///
/// assert!(is_loopback_host("127.0.0.1"));
/// assert!(is_loopback_host("[::1]"));
/// assert!(is_loopback_host("localhost"));
/// assert!(!is_loopback_host("192.0.2.1"));
/// assert!(!is_loopback_host("localhost.example.org"));
/// ```
pub fn is_loopback_host(host: &str) -> bool {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    match unbracketed.parse::<IpAddr>() {
        Ok(address) => address.to_canonical().is_loopback(),
        Err(_) => host.eq_ignore_ascii_case(LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_told_from_the_others() {
        for (host, expected) in [
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("::1", true),
            ("[::1]", true),
            ("::ffff:127.0.0.1", true),
            ("[::ffff:127.0.0.2]", true),
            ("localhost", true),
            ("LocalHost", true),
            ("192.0.2.1", false),
            ("0.0.0.0", false),
            ("::", false),
            ("2001:db8::1", false),
            ("[2001:db8::1]", false),
            ("128.0.0.1", false),
            ("127.0.0.1.example.org", false),
            ("localhost.example.org", false),
            ("localhost.", false),
            ("[localhost]", false),
            ("ldap.example.org", false),
            ("", false),
        ] {
            assert_eq!(is_loopback_host(host), expected, "{host:?}");
        }
    }
}
