//! Value checks on a [`Config`]: syntax of names and addresses, ranges, and the references
//! between fields (bridge ports, VLAN parents, gateways, the chosen auth backend).

use std::collections::HashMap;
use std::net::IpAddr;

use mfv_linux::check_interface_name;
use mfv_linux::loopback::is_loopback_host;

use super::reader::{child, element, keyed};
use super::types::*;

/// Valid TCP ports.
pub(super) const PORT_RANGE: (i64, i64) = (1, 65535);
/// Valid link MTUs (IPv4's minimum to the largest the kernel accepts on common links).
pub(super) const MTU_RANGE: (i64, i64) = (68, 65535);
/// The smallest MTU IPv6 works with.
const IPV6_MIN_MTU: u32 = 1280;
/// Valid 802.1Q VLAN ids (0 and 4095 are reserved).
pub(super) const VLAN_ID_RANGE: (i64, i64) = (1, 4094);
/// The resolver reads at most this many name servers.
const MAX_DNS_SERVERS: usize = 3;

/// The message for a number outside its range.
pub(super) fn out_of_range(value: &str, range: (i64, i64)) -> String {
    format!("{value} is out of range ({} to {})", range.0, range.1)
}

/// One problem found by the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Issue {
    /// The field the problem is about.
    pub(super) path: String,
    /// Where to point in the text when it is not `path` itself (e.g. a missing section is
    /// shown at the key that needs it).
    pub(super) anchor: Option<String>,
    /// What is wrong.
    pub(super) message: String,
}

#[derive(Debug, Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            path: path.into(),
            anchor: None,
            message: message.into(),
        });
    }

    fn add_at(&mut self, path: impl Into<String>, anchor: &str, message: impl Into<String>) {
        self.0.push(Issue {
            path: path.into(),
            anchor: Some(anchor.to_owned()),
            message: message.into(),
        });
    }
}

/// Every problem in `config`'s values.
pub(super) fn check(config: &Config) -> Vec<Issue> {
    let mut issues = Issues::default();
    check_host(&config.host, &mut issues);
    check_network(&config.network, &mut issues);
    check_storage(&config.storage, &mut issues);
    check_auth(&config.auth, &mut issues);
    check_web(&config.web, &mut issues);
    issues.0
}

/// Every problem in a `[network]` section read on its own.
pub(super) fn check_network_section(network: &NetworkConfig) -> Vec<Issue> {
    let mut issues = Issues::default();
    check_network(network, &mut issues);
    issues.0
}

fn check_host(host: &HostConfig, issues: &mut Issues) {
    if let Err(message) = check_hostname(&host.hostname) {
        issues.add("host.hostname", message);
    }
    if let Err(message) = check_time_zone(&host.time_zone) {
        issues.add("host.time_zone", message);
    }
    for (index, server) in host.ntp_servers.iter().enumerate() {
        if let Err(message) = check_server(server) {
            issues.add(element("host.ntp_servers", index), message);
        }
    }
    let (shortest, longest) = VM_SHUTDOWN_TIMEOUT_RANGE;
    if !(shortest..=longest).contains(&i64::from(host.vm_shutdown_timeout)) {
        issues.add(
            "host.vm_shutdown_timeout",
            out_of_range(
                &host.vm_shutdown_timeout.to_string(),
                VM_SHUTDOWN_TIMEOUT_RANGE,
            ),
        );
    }
    let mut first_by_name: HashMap<&str, usize> = HashMap::new();
    for (index, name) in host.autostart_order.iter().enumerate() {
        let path = element("host.autostart_order", index);
        if let Err(message) = check_vm_name(name) {
            issues.add(path, message);
        } else if let Some(first) = first_by_name.get(name.as_str()) {
            issues.add(
                path,
                format!("{name:?} is named twice (already host.autostart_order[{first}])"),
            );
        } else {
            first_by_name.insert(name, index);
        }
    }
}

/// A VM name as Minifed-Virt makes them: letters, digits, '.', '_' and '-', starting with a
/// letter or digit, at most 64 bytes.
fn check_vm_name(name: &str) -> Result<(), String> {
    let starts_well = name.starts_with(|c: char| c.is_ascii_alphanumeric());
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() {
        return Err("the VM name is empty".to_owned());
    }
    if !starts_well || !allowed || name.len() > 64 {
        return Err(format!(
            "{name:?} is not a VM name (letters, digits, '.', '_' and '-', starting with a \
             letter or digit, at most 64 bytes)"
        ));
    }
    Ok(())
}

/// An RFC 1123 host name: one label or a fully qualified name without the trailing dot.
pub(super) fn check_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the host name is empty".to_owned());
    }
    if name.len() > 253 {
        return Err(format!(
            "{name:?} is {} characters long; a host name has at most 253",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "{name:?} has an empty label (two dots, or a dot at an end)"
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "{name:?}: the label {label:?} is {} characters long; a label has at most 63",
                label.len()
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{name:?} contains {bad:?}; host names use letters, digits, '-' and '.' only"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "{name:?}: the label {label:?} starts or ends with '-'"
            ));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "{name:?} ends in an all-numeric label, which reads as an IP address"
        ));
    }
    Ok(())
}

/// A host name or an IP address (NTP, NFS and MySQL servers).
fn check_server(server: &str) -> Result<(), String> {
    if server.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    check_hostname(server).map_err(|message| format!("not an IP address, and {message}"))
}

/// An IANA time zone name, checked for syntax only: `UTC`, `Europe/Berlin`,
/// `America/Argentina/Buenos_Aires`, `Etc/GMT+5`.
pub(super) fn check_time_zone(zone: &str) -> Result<(), String> {
    let valid_part = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphabetic())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'))
            && !part.contains("..")
    };
    let parts: Vec<&str> = zone.split('/').collect();
    if zone.is_empty() || parts.len() > 3 || !parts.iter().all(|part| valid_part(part)) {
        return Err(format!(
            "{zone:?} is not a time zone name (like \"UTC\" or \"Europe/Berlin\")"
        ));
    }
    Ok(())
}

fn check_network(network: &NetworkConfig, issues: &mut Issues) {
    let mut first_by_name: HashMap<&str, usize> = HashMap::new();
    let mut gateway_owner: Option<usize> = None;
    let mut gateway6_owner: Option<usize> = None;
    let mut vlan_owner: HashMap<(&str, u16), usize> = HashMap::new();
    let mut bond_of_port: HashMap<String, String> = HashMap::new();
    let bridge_name = network.bridge.as_ref().map(|bridge| bridge.name.as_str());
    for (index, interface) in network.interfaces.iter().enumerate() {
        let path = element("network.interfaces", index);
        if let Err(error) = check_interface_name(&interface.name) {
            issues.add(child(&path, "name"), error.to_string());
        } else if let Some(first) = first_by_name.get(interface.name.as_str()) {
            issues.add(
                child(&path, "name"),
                format!(
                    "duplicate interface {:?} (already declared in network.interfaces[{first}])",
                    interface.name
                ),
            );
        } else {
            first_by_name.insert(&interface.name, index);
        }
        check_interface_addresses(interface, &path, issues);
        if interface.gateway.is_some() {
            if let Some(owner) = gateway_owner {
                issues.add(
                    child(&path, "gateway"),
                    format!("a second IPv4 default gateway (network.interfaces[{owner}] has one)"),
                );
            }
            gateway_owner.get_or_insert(index);
        }
        if interface.gateway6.is_some() {
            if let Some(owner) = gateway6_owner {
                issues.add(
                    child(&path, "gateway6"),
                    format!("a second IPv6 default gateway (network.interfaces[{owner}] has one)"),
                );
            }
            gateway6_owner.get_or_insert(index);
        }
        if let Some(mtu) = interface.mtu {
            let mtu_path = child(&path, "mtu");
            if !(MTU_RANGE.0..=MTU_RANGE.1).contains(&i64::from(mtu)) {
                issues.add(mtu_path, out_of_range(&mtu.to_string(), MTU_RANGE));
            } else if mtu < IPV6_MIN_MTU
                && interface.addresses.iter().any(|a| a.address().is_ipv6())
            {
                issues.add(
                    mtu_path,
                    format!("{mtu} is below {IPV6_MIN_MTU}, the smallest MTU IPv6 works with"),
                );
            }
        }
        if let Some(bond) = &interface.bond {
            check_bond(interface, bond, &path, network, &mut bond_of_port, issues);
        }
        if let Some(vlan) = &interface.vlan {
            let vlan_path = child(&path, "vlan");
            if !(VLAN_ID_RANGE.0..=VLAN_ID_RANGE.1).contains(&i64::from(vlan.id)) {
                issues.add(
                    child(&vlan_path, "id"),
                    out_of_range(&vlan.id.to_string(), VLAN_ID_RANGE),
                );
            } else if let Some(first) = vlan_owner.get(&(vlan.parent.as_str(), vlan.id)) {
                issues.add(
                    child(&vlan_path, "id"),
                    format!(
                        "VLAN {} on {:?} is already network.interfaces[{first}]",
                        vlan.id, vlan.parent
                    ),
                );
            } else {
                vlan_owner.insert((&vlan.parent, vlan.id), index);
            }
            if vlan.parent == interface.name {
                issues.add(
                    child(&vlan_path, "parent"),
                    "a VLAN interface cannot be its own parent",
                );
            } else if !network
                .interfaces
                .iter()
                .any(|other| other.name == vlan.parent)
            {
                issues.add(
                    child(&vlan_path, "parent"),
                    format!(
                        "{:?} is not a declared interface (add a [[network.interfaces]] entry for it, e.g. with mode = \"manual\")",
                        vlan.parent
                    ),
                );
            }
            if Some(interface.name.as_str()) == bridge_name {
                issues.add(
                    vlan_path,
                    format!(
                        "{:?} is the bridge; it cannot also be a VLAN",
                        interface.name
                    ),
                );
            }
        }
    }
    if let Some(bridge) = &network.bridge {
        check_bridge(bridge, network, issues);
    }
    check_dns(&network.dns, issues);
}

fn check_interface_addresses(interface: &InterfaceConfig, path: &str, issues: &mut Issues) {
    let addresses_path = child(path, "addresses");
    if interface.mode != InterfaceMode::Static {
        let mode = interface.mode.as_str();
        if !interface.addresses.is_empty() {
            issues.add(
                addresses_path.clone(),
                format!(
                    "addresses are only used with mode = \"static\" (this interface is {mode:?})"
                ),
            );
        }
        for (key, set) in [
            ("gateway", interface.gateway.is_some()),
            ("gateway6", interface.gateway6.is_some()),
        ] {
            if set {
                issues.add(
                    child(path, key),
                    format!(
                        "{key} is only used with mode = \"static\" (this interface is {mode:?})"
                    ),
                );
            }
        }
        return;
    }
    if interface.addresses.is_empty() {
        issues.add_at(
            addresses_path.clone(),
            path,
            "mode = \"static\" needs at least one address",
        );
    }
    for (index, cidr) in interface.addresses.iter().enumerate() {
        let address_path = element(&addresses_path, index);
        if let Err(message) = check_host_address(*cidr) {
            issues.add(address_path, message);
        } else if interface.addresses[..index]
            .iter()
            .any(|earlier| earlier.address() == cidr.address())
        {
            issues.add(address_path, format!("{} is listed twice", cidr.address()));
        }
    }
    let has_v4 = interface.addresses.iter().any(|a| a.address().is_ipv4());
    let has_v6 = interface.addresses.iter().any(|a| a.address().is_ipv6());
    if let Some(gateway) = interface.gateway {
        if !has_v4 {
            issues.add(
                child(path, "gateway"),
                format!("gateway {gateway} is IPv4 but the interface has no IPv4 address"),
            );
        } else if interface
            .addresses
            .iter()
            .any(|a| a.address() == IpAddr::V4(gateway))
        {
            issues.add(
                child(path, "gateway"),
                format!("gateway {gateway} is this interface's own address"),
            );
        }
    }
    if let Some(gateway6) = interface.gateway6 {
        if !has_v6 {
            issues.add(
                child(path, "gateway6"),
                format!("gateway6 {gateway6} is IPv6 but the interface has no IPv6 address"),
            );
        } else if interface
            .addresses
            .iter()
            .any(|a| a.address() == IpAddr::V6(gateway6))
        {
            issues.add(
                child(path, "gateway6"),
                format!("gateway6 {gateway6} is this interface's own address"),
            );
        }
    }
}

/// An address a host interface can carry.
fn check_host_address(cidr: IpCidr) -> Result<(), String> {
    let address = cidr.address();
    if cidr.prefix() == 0 {
        return Err(format!(
            "{cidr}: a prefix length of 0 is not an interface address"
        ));
    }
    if address.is_unspecified() {
        return Err(format!(
            "{cidr}: the unspecified address is not an interface address"
        ));
    }
    if address.is_multicast() {
        return Err(format!(
            "{cidr}: a multicast address is not an interface address"
        ));
    }
    if address.is_loopback() {
        return Err(format!(
            "{cidr}: a loopback address is not an interface address"
        ));
    }
    if let IpAddr::V4(v4) = address {
        if v4.is_broadcast() {
            return Err(format!(
                "{cidr}: the broadcast address is not an interface address"
            ));
        }
        if cidr.prefix() <= 30 {
            let host_bits = 32 - u32::from(cidr.prefix());
            let host_mask = (1u32 << host_bits) - 1;
            let host_part = u32::from(v4) & host_mask;
            if host_part == 0 {
                return Err(format!(
                    "{cidr} is the network address of its subnet; use a host address"
                ));
            }
            if host_part == host_mask {
                return Err(format!(
                    "{cidr} is the broadcast address of its subnet; use a host address"
                ));
            }
        }
    }
    Ok(())
}

fn check_bridge(bridge: &BridgeConfig, network: &NetworkConfig, issues: &mut Issues) {
    if let Err(error) = check_interface_name(&bridge.name) {
        issues.add("network.bridge.name", error.to_string());
    }
    check_ports(
        "bridge",
        &bridge.name,
        &bridge.ports,
        "network.bridge.ports",
        network,
        issues,
    );
}

/// The ports of the bridge or a bond (`kind`) called `owner`: declared interfaces other than
/// the owner, each once, in `mode = "manual"` (a port carries no addresses of its own).
fn check_ports(
    kind: &str,
    owner: &str,
    ports: &[String],
    path: &str,
    network: &NetworkConfig,
    issues: &mut Issues,
) {
    for (index, port) in ports.iter().enumerate() {
        let path = element(path, index);
        if port == owner {
            issues.add(path, format!("the {kind} {port:?} cannot be its own port"));
            continue;
        }
        if ports[..index].contains(port) {
            issues.add(path, format!("{port:?} is listed twice"));
            continue;
        }
        match network.interfaces.iter().find(|interface| interface.name == *port) {
            None => issues.add(
                path,
                format!(
                    "{port:?} is not a declared interface (add a [[network.interfaces]] entry with name = {port:?} and mode = \"manual\")"
                ),
            ),
            Some(interface) if interface.mode != InterfaceMode::Manual => issues.add(
                path,
                format!(
                    "{port:?} has mode = {:?}; a {kind} port carries no addresses of its own: use mode = \"manual\" and give the addresses to an interface named {owner:?}",
                    interface.mode.as_str(),
                ),
            ),
            Some(_) => {}
        }
    }
}

/// A bond entry: its ports, its primary, and that the interface is nothing else as well and
/// no port belongs to two bonds.
fn check_bond(
    interface: &InterfaceConfig,
    bond: &BondConfig,
    path: &str,
    network: &NetworkConfig,
    bond_of_port: &mut HashMap<String, String>,
    issues: &mut Issues,
) {
    let bond_path = child(path, "bond");
    let ports_path = child(&bond_path, "ports");
    if bond.ports.is_empty() {
        issues.add(&ports_path, "a bond needs at least one port");
    }
    check_ports(
        "bond",
        &interface.name,
        &bond.ports,
        &ports_path,
        network,
        issues,
    );
    for (index, port) in bond.ports.iter().enumerate() {
        match bond_of_port.get(port) {
            Some(other) if *other != interface.name => issues.add(
                element(&ports_path, index),
                format!("{port:?} is already a port of the bond {other:?}"),
            ),
            _ => {
                bond_of_port.insert(port.clone(), interface.name.clone());
            }
        }
    }
    if let Some(primary) = &bond.primary
        && !bond.ports.is_empty()
        && !bond.ports.contains(primary)
    {
        issues.add(
            child(&bond_path, "primary"),
            format!(
                "{primary:?} is not one of the ports ({})",
                bond.ports.join(", ")
            ),
        );
    }
    if interface.vlan.is_some() {
        issues.add(&bond_path, "an interface cannot be both a VLAN and a bond");
    }
    if network
        .bridge
        .as_ref()
        .is_some_and(|bridge| bridge.name == interface.name)
    {
        issues.add(
            bond_path,
            format!(
                "{:?} is the bridge; it cannot also be a bond",
                interface.name
            ),
        );
    }
}

fn check_dns(dns: &DnsConfig, issues: &mut Issues) {
    if dns.servers.len() > MAX_DNS_SERVERS {
        issues.add(
            element("network.dns.servers", MAX_DNS_SERVERS),
            format!(
                "{} name servers given; the resolver uses at most {MAX_DNS_SERVERS}",
                dns.servers.len()
            ),
        );
    }
    for (index, server) in dns.servers.iter().enumerate() {
        if server.is_unspecified() || server.is_multicast() {
            issues.add(
                element("network.dns.servers", index),
                format!("{server} cannot be a name server"),
            );
        }
    }
    for (index, domain) in dns.search.iter().enumerate() {
        if let Err(message) = check_hostname(domain) {
            issues.add(element("network.dns.search", index), message);
        }
    }
}

/// A libvirt pool name: letters, digits, '.', '_' and '-', not starting with '.'.
fn check_pool_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the pool name is empty".to_owned());
    }
    if name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "{name:?} is not a pool name (letters, digits, '.', '_' and '-', not starting with '.')"
        ));
    }
    Ok(())
}

fn check_absolute(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if path.contains('\0') {
        return Err("the path contains a NUL character".to_owned());
    }
    Ok(())
}

fn check_storage(storage: &StorageConfig, issues: &mut Issues) {
    let mut first_by_name: HashMap<&str, usize> = HashMap::new();
    for (index, pool) in storage.pools.iter().enumerate() {
        let path = element("storage.pools", index);
        if let Err(message) = check_pool_name(&pool.name) {
            issues.add(child(&path, "name"), message);
        } else if let Some(first) = first_by_name.get(pool.name.as_str()) {
            issues.add(
                child(&path, "name"),
                format!(
                    "duplicate pool {:?} (already declared in storage.pools[{first}])",
                    pool.name
                ),
            );
        } else {
            first_by_name.insert(&pool.name, index);
        }
        let kind = pool.kind.as_str();
        let (required, allowed): (&[&str], &[&str]) = match pool.kind {
            PoolKind::Dir => (&["path"], &["path"]),
            PoolKind::Logical => (&["device"], &["device"]),
            PoolKind::Nfs => (&["server", "export"], &["server", "export", "path"]),
        };
        for (key, value) in [
            ("path", &pool.path),
            ("device", &pool.device),
            ("server", &pool.server),
            ("export", &pool.export),
        ] {
            let key_path = child(&path, key);
            match value {
                None if required.contains(&key) => {
                    issues.add_at(key_path, &path, format!("kind = {kind:?} needs {key}"))
                }
                None => {}
                Some(_) if !allowed.contains(&key) => {
                    issues.add(key_path, format!("{key} is not used with kind = {kind:?}"))
                }
                Some(value) if key == "server" => {
                    if let Err(message) = check_server(value) {
                        issues.add(key_path, message);
                    }
                }
                Some(value) => {
                    if let Err(message) = check_absolute(value) {
                        issues.add(key_path, message);
                    }
                }
            }
        }
    }
}

fn check_file_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".to_owned());
    }
    if path.contains('\0') {
        return Err("the path contains a NUL character".to_owned());
    }
    Ok(())
}

fn check_auth(auth: &AuthConfig, issues: &mut Issues) {
    let missing = match auth.backend {
        AuthBackend::Sqlite => None,
        AuthBackend::Ldap if auth.ldap.is_none() => Some("ldap"),
        AuthBackend::Mysql if auth.mysql.is_none() => Some("mysql"),
        AuthBackend::Ldap | AuthBackend::Mysql => None,
    };
    if let Some(section) = missing {
        issues.add_at(
            format!("auth.{section}"),
            "auth.backend",
            format!("backend = {section:?} needs an [auth.{section}] section"),
        );
    }
    let (shortest, longest) = MIN_PASSWORD_LENGTH_RANGE;
    if !(shortest..=longest).contains(&i64::from(auth.min_password_length)) {
        issues.add(
            "auth.min_password_length",
            out_of_range(
                &auth.min_password_length.to_string(),
                MIN_PASSWORD_LENGTH_RANGE,
            ),
        );
    }
    if let Some(sqlite) = &auth.sqlite
        && let Err(message) = check_file_path(&sqlite.path)
    {
        issues.add("auth.sqlite.path", message);
    }
    if let Some(ldap) = &auth.ldap {
        check_ldap(ldap, issues);
    }
    if let Some(mysql) = &auth.mysql {
        if let Err(message) = check_server(&mysql.host) {
            issues.add("auth.mysql.host", message);
        }
        if mysql.port == 0 {
            issues.add("auth.mysql.port", out_of_range("0", PORT_RANGE));
        }
        if mysql.database.is_empty() || mysql.database.len() > 64 {
            issues.add(
                "auth.mysql.database",
                "a database name has 1 to 64 characters",
            );
        }
        if mysql.user.is_empty() {
            issues.add("auth.mysql.user", "the user name is empty");
        }
        if let Some(file) = &mysql.password_file
            && let Err(message) = check_file_path(file)
        {
            issues.add("auth.mysql.password_file", message);
        }
        check_mysql_tls(mysql, issues);
    }
}

/// The message for a cleartext connection to `server`, which is not on this machine.
fn cleartext_refused(server: &str, remedy: &str) -> String {
    format!(
        "{server} is not on this machine and the connection has no TLS, so passwords would \
         cross the network in cleartext: {remedy}, or set insecure = true to accept cleartext \
         on a network you trust"
    )
}

/// `tls`, `ca_certificate` and `insecure`: cleartext only to a loopback host or with
/// `insecure = true`.
fn check_mysql_tls(mysql: &MysqlAuthConfig, issues: &mut Issues) {
    if let Some(file) = &mysql.ca_certificate {
        if let Err(message) = check_file_path(file) {
            issues.add("auth.mysql.ca_certificate", message);
        } else if !mysql.tls {
            issues.add(
                "auth.mysql.ca_certificate",
                "ca_certificate is only used with tls = true",
            );
        }
    }
    if mysql.tls && mysql.insecure {
        issues.add(
            "auth.mysql.insecure",
            "insecure = true accepts cleartext, and tls = true asks for TLS: drop insecure",
        );
    }
    if !mysql.tls
        && !mysql.insecure
        && check_server(&mysql.host).is_ok()
        && !is_loopback_host(&mysql.host)
    {
        issues.add_at(
            "auth.mysql.tls",
            "auth.mysql.host",
            cleartext_refused(&mysql.host, "set tls = true"),
        );
    }
}

fn check_ldap(ldap: &LdapAuthConfig, issues: &mut Issues) {
    if let Err(message) = check_ldap_url(&ldap.url) {
        issues.add("auth.ldap.url", message);
    }
    if let Err(message) = check_dn(&ldap.base_dn) {
        issues.add("auth.ldap.base_dn", message);
    }
    if let Some(bind_dn) = &ldap.bind_dn
        && let Err(message) = check_dn(bind_dn)
    {
        issues.add("auth.ldap.bind_dn", message);
    }
    match (&ldap.bind_dn, &ldap.bind_password_file) {
        (Some(_), None) => issues.add_at(
            "auth.ldap.bind_password_file",
            "auth.ldap.bind_dn",
            "bind_dn needs bind_password_file",
        ),
        (None, Some(_)) => issues.add(
            "auth.ldap.bind_password_file",
            "bind_password_file is only used with bind_dn",
        ),
        (Some(_), Some(file)) => {
            if let Err(message) = check_file_path(file) {
                issues.add("auth.ldap.bind_password_file", message);
            }
        }
        (None, None) => {}
    }
    if let Err(message) = check_ldap_filter(&ldap.user_filter) {
        issues.add("auth.ldap.user_filter", message);
    }
    if let Some(filter) = &ldap.disabled_filter
        && let Err(message) = check_filter_parentheses(filter)
    {
        issues.add("auth.ldap.disabled_filter", message);
    }
    check_ldap_groups(ldap, issues);
    check_ldap_tls(ldap, issues);
}

/// `group_base` (or a parent of `base_dn` to stand for it) and `group_roles`.
fn check_ldap_groups(ldap: &LdapAuthConfig, issues: &mut Issues) {
    match &ldap.group_base {
        Some(group_base) => {
            if let Err(message) = check_dn(group_base) {
                issues.add("auth.ldap.group_base", message);
            }
        }
        None if check_dn(&ldap.base_dn).is_ok() && ldap.group_base_dn().is_none() => issues.add_at(
            "auth.ldap.group_base",
            "auth.ldap.base_dn",
            format!(
                "base_dn {:?} has no parent to search groups under: set group_base",
                ldap.base_dn
            ),
        ),
        None => {}
    }
    if ldap.group_roles.is_empty() {
        issues.add(
            "auth.ldap.group_roles",
            "no group is mapped to a role, so nobody could log in",
        );
    }
    for group in ldap.group_roles.keys() {
        let path = keyed("auth.ldap.group_roles", group);
        if group.trim().is_empty() {
            issues.add(path, "the group name is empty");
        } else if group.contains('=')
            && let Err(message) = check_dn(group)
        {
            issues.add(
                path,
                format!("{message} (name a group by its cn or its DN)"),
            );
        }
    }
}

/// `starttls` and `ca_certificate` against the url's scheme.
fn check_ldap_tls(ldap: &LdapAuthConfig, issues: &mut Issues) {
    let ldaps = ldap.url.starts_with("ldaps://");
    if ldap.starttls && ldaps {
        issues.add(
            "auth.ldap.starttls",
            "starttls = true upgrades an ldap:// connection, and the url is ldaps:// (TLS from the start): use one or the other",
        );
    }
    if let Some(file) = &ldap.ca_certificate {
        if let Err(message) = check_file_path(file) {
            issues.add("auth.ldap.ca_certificate", message);
        } else if !ldaps && !ldap.starttls && check_ldap_url(&ldap.url).is_ok() {
            issues.add(
                "auth.ldap.ca_certificate",
                "ca_certificate is only used with an ldaps:// url or starttls = true",
            );
        }
    }
    let tls = ldaps || ldap.starttls;
    if tls && ldap.insecure {
        issues.add(
            "auth.ldap.insecure",
            "insecure = true accepts cleartext, and the connection uses TLS (ldaps:// or starttls = true): drop insecure",
        );
    }
    if !tls
        && !ldap.insecure
        && let Ok(host) = check_ldap_url(&ldap.url)
        && !is_loopback_host(host)
    {
        issues.add_at(
            "auth.ldap.starttls",
            "auth.ldap.url",
            cleartext_refused(&ldap.url, "set starttls = true or use an ldaps:// url"),
        );
    }
}

/// `ldap://host[:port][/]` or `ldaps://...`; returns the host (an IPv6 address without its
/// brackets).
fn check_ldap_url(url: &str) -> Result<&str, String> {
    let Some(rest) = url
        .strip_prefix("ldap://")
        .or_else(|| url.strip_prefix("ldaps://"))
    else {
        return Err(format!("{url:?} does not start with ldap:// or ldaps://"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    split_authority(authority)
        .map(|(host, _)| host)
        .map_err(|reason| format!("{url:?}: {reason}"))
}

/// `host[:port]` or `[v6]:port` from a URL: the host (an IPv6 address without its
/// brackets, else an IP address or a host name) and the port if one is written.
pub(super) fn split_authority(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((address, after)) = bracketed.split_once(']') else {
            return Err("an unclosed '[' around an IPv6 address".to_owned());
        };
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{address:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {after:?} after the address"))?,
            ),
        };
        (address, port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("no host".to_owned());
        }
        check_server(host).map_err(|message| format!("the host is {message}"))?;
        (host, port)
    };
    let port = match port {
        None => None,
        Some(port) => Some(
            port.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| port.parse::<u16>().ok())
                .flatten()
                .filter(|number| *number != 0)
                .ok_or_else(|| format!("{port:?} is not a port (1 to 65535)"))?,
        ),
    };
    Ok((host, port))
}

/// A distinguished name: comma-separated `attribute=value` parts.
fn check_dn(dn: &str) -> Result<(), String> {
    if dn.is_empty() {
        return Err("the DN is empty".to_owned());
    }
    for part in dn_components(dn) {
        match part.split_once('=') {
            Some((attribute, _)) if !attribute.trim().is_empty() => {}
            _ => {
                return Err(format!(
                    "{dn:?} is not a DN: {part:?} is not attribute=value"
                ));
            }
        }
    }
    Ok(())
}

/// An LDAP search filter in parentheses, balanced, using `{username}`.
/// A user filter: one filter in parentheses that uses `{username}`.
fn check_ldap_filter(filter: &str) -> Result<(), String> {
    check_filter_parentheses(filter)?;
    if !filter.contains("{username}") {
        return Err(format!(
            "{filter:?} does not use {{username}}, so it cannot find the user logging in"
        ));
    }
    Ok(())
}

/// An LDAP filter in parentheses, balanced.
fn check_filter_parentheses(filter: &str) -> Result<(), String> {
    if !filter.starts_with('(') || !filter.ends_with(')') {
        return Err(format!("{filter:?} is not an LDAP filter in parentheses"));
    }
    let mut depth: i64 = 0;
    for c in filter.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if depth != 0 {
        return Err(format!("{filter:?} has unbalanced parentheses"));
    }
    Ok(())
}

fn check_web(web: &WebConfig, issues: &mut Issues) {
    if web.port == 0 {
        issues.add("web.port", out_of_range("0", PORT_RANGE));
    }
    match (&web.tls_cert, &web.tls_key) {
        (Some(_), None) => issues.add_at("web.tls_key", "web.tls_cert", "tls_cert needs tls_key"),
        (None, Some(_)) => issues.add_at("web.tls_cert", "web.tls_key", "tls_key needs tls_cert"),
        _ => {}
    }
    for (key, value) in [("tls_cert", &web.tls_cert), ("tls_key", &web.tls_key)] {
        if let Some(path) = value
            && let Err(message) = check_file_path(path)
        {
            issues.add(child("web", key), message);
        }
    }
}
