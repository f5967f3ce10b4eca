//! The desired network state of the host, and how the kernel's state differs from it.
//!
//! This is the pure model: [`NetworkState`] says what should be, [`differences`] compares it
//! with what the kernel reports ([`ObservedLink`]s and routes). Applying it is `apply.rs`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::netlink::is_link_local;
use crate::{DnsConfig, IpCidr, Route};

/// What the network of the host should look like. Interfaces it does not name are left alone;
/// for the ones it names, addresses and routes are exactly the ones listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    /// The managed interfaces, virtual ones after the interfaces they are built on.
    #[serde(default)]
    pub interfaces: Vec<InterfaceConfig>,
    /// The routes leaving through managed interfaces.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Resolver settings; `None` leaves `resolv.conf` alone.
    #[serde(default)]
    pub dns: Option<DnsConfig>,
}

/// One managed interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceConfig {
    /// Interface name.
    pub name: String,
    /// Whether the interface exists already or is a virtual one to create.
    #[serde(default)]
    pub kind: InterfaceKind,
    /// Its addresses, exactly. Addresses the kernel makes itself are not compared: IPv6
    /// link-local ones, and those it derives from the network's router advertisements.
    #[serde(default)]
    pub addresses: Vec<IpCidr>,
    /// Its MTU; `None` leaves it as it is.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Whether it is administratively up.
    pub up: bool,
}

/// What an interface is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum InterfaceKind {
    /// An interface that exists already (a network card, a veth).
    #[default]
    Existing,
    /// A bridge with these ports.
    Bridge {
        /// The ports, set up and enslaved.
        ports: Vec<String>,
    },
    /// A VLAN sub-interface.
    Vlan {
        /// The interface carrying the tagged frames, set up (the kernel keeps a VLAN down
        /// while its parent is down).
        parent: String,
        /// The VLAN id, 1 to 4094.
        id: u16,
    },
    /// An active-backup bond with these ports, watching their link (MII monitoring) so it
    /// fails over to another port when the active one loses its link.
    ActiveBackupBond {
        /// The ports, set up and enslaved; without a primary the first one up is active.
        ports: Vec<String>,
        /// The port that is active whenever it has link; one of `ports`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primary: Option<String>,
    },
}

impl InterfaceKind {
    /// The kernel's name of the interface kind, for the virtual ones.
    pub fn kernel_kind(&self) -> Option<&'static str> {
        match self {
            InterfaceKind::Existing => None,
            InterfaceKind::Bridge { .. } => Some("bridge"),
            InterfaceKind::Vlan { .. } => Some("vlan"),
            InterfaceKind::ActiveBackupBond { .. } => Some("bond"),
        }
    }

    /// The ports of a bridge or bond.
    pub fn ports(&self) -> &[String] {
        match self {
            InterfaceKind::Bridge { ports } | InterfaceKind::ActiveBackupBond { ports, .. } => {
                ports
            }
            InterfaceKind::Existing | InterfaceKind::Vlan { .. } => &[],
        }
    }
}

/// An interface as the kernel reports it, reduced to what a [`NetworkState`] can say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedLink {
    /// Interface name.
    pub name: String,
    /// Kernel kind (`bridge`, `vlan`, `bond`, `veth`...), if virtual.
    pub kind: Option<String>,
    /// The addresses someone configured: not those the kernel made itself (IPv6 link-local
    /// ones and those from router advertisements).
    pub addresses: Vec<IpCidr>,
    /// Its MTU.
    pub mtu: u32,
    /// Whether it is administratively up.
    pub up: bool,
    /// The bridge or bond it is a port of.
    pub master: Option<String>,
    /// For a bond, its primary port.
    #[serde(default)]
    pub bond_primary: Option<String>,
}

/// One way the kernel's state differs from the desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "difference", rename_all = "kebab-case")]
pub enum Difference {
    /// The interface does not exist.
    MissingInterface {
        /// Interface name.
        interface: String,
    },
    /// The interface is of another kind.
    WrongKind {
        /// Interface name.
        interface: String,
        /// The kind wanted.
        wanted: String,
        /// The kind found (`none` for a non-virtual interface).
        found: String,
    },
    /// A wanted address is missing.
    MissingAddress {
        /// Interface name.
        interface: String,
        /// The address.
        address: IpCidr,
    },
    /// The interface has an address that is not wanted.
    ExtraAddress {
        /// Interface name.
        interface: String,
        /// The address.
        address: IpCidr,
    },
    /// The MTU differs.
    WrongMtu {
        /// Interface name.
        interface: String,
        /// The MTU wanted.
        wanted: u32,
        /// The MTU found.
        found: u32,
    },
    /// The administrative state differs.
    WrongAdminState {
        /// Interface name.
        interface: String,
        /// Whether it should be up.
        wanted_up: bool,
    },
    /// A port is not in its bridge or bond.
    NotAPort {
        /// The port.
        port: String,
        /// The bridge or bond it should be in.
        master: String,
        /// Where it is instead.
        found: Option<String>,
    },
    /// A bond's primary port is not the one wanted.
    WrongPrimary {
        /// The bond.
        bond: String,
        /// The primary port wanted.
        wanted: String,
        /// The primary port found.
        found: Option<String>,
    },
    /// A wanted route is missing.
    MissingRoute {
        /// The route.
        route: Route,
    },
    /// A route through a managed interface is not wanted.
    ExtraRoute {
        /// The route.
        route: Route,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::MissingInterface { interface } => write!(f, "{interface}: does not exist"),
            Difference::WrongKind {
                interface,
                wanted,
                found,
            } => write!(f, "{interface}: is a {found} interface, wanted a {wanted}"),
            Difference::MissingAddress { interface, address } => {
                write!(f, "{interface}: address {address} is missing")
            }
            Difference::ExtraAddress { interface, address } => {
                write!(f, "{interface}: address {address} should not be there")
            }
            Difference::WrongMtu {
                interface,
                wanted,
                found,
            } => write!(f, "{interface}: MTU is {found}, wanted {wanted}"),
            Difference::WrongAdminState {
                interface,
                wanted_up,
            } => {
                let (wanted, found) = if *wanted_up {
                    ("up", "down")
                } else {
                    ("down", "up")
                };
                write!(f, "{interface}: is {found}, wanted {wanted}")
            }
            Difference::NotAPort {
                port,
                master,
                found,
            } => match found {
                Some(other) => write!(f, "{port}: is a port of {other}, wanted {master}"),
                None => write!(f, "{port}: is not a port of {master}"),
            },
            Difference::WrongPrimary {
                bond,
                wanted,
                found,
            } => match found {
                Some(other) => write!(f, "{bond}: primary port is {other}, wanted {wanted}"),
                None => write!(f, "{bond}: has no primary port, wanted {wanted}"),
            },
            Difference::MissingRoute { route } => write!(f, "route {route} is missing"),
            Difference::ExtraRoute { route } => write!(f, "route {route} should not be there"),
        }
    }
}

impl NetworkState {
    /// The names of every interface this state touches: managed ones, ports and VLAN parents.
    pub fn involved_interfaces(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut add = |name: &String| {
            if !names.contains(name) {
                names.push(name.clone());
            }
        };
        for interface in &self.interfaces {
            add(&interface.name);
            if let InterfaceKind::Vlan { parent, .. } = &interface.kind {
                add(parent);
            }
            for port in interface.kind.ports() {
                add(port);
            }
        }
        names
    }

    /// Makes `port` a port-to-be of `master`: its addresses are taken (and returned with
    /// whether it was up), it is set up, added as an existing interface if this state does
    /// not have it yet, and its routes now leave through `master`.
    fn take_port(&mut self, port: &str, master: &str) -> (Vec<IpCidr>, bool) {
        let taken = match self
            .interfaces
            .iter_mut()
            .find(|config| config.name == port)
        {
            Some(config) => {
                let was_up = config.up;
                config.up = true;
                (std::mem::take(&mut config.addresses), was_up)
            }
            None => {
                self.interfaces.push(InterfaceConfig {
                    name: port.into(),
                    kind: InterfaceKind::Existing,
                    addresses: Vec::new(),
                    mtu: None,
                    up: true,
                });
                (Vec::new(), true)
            }
        };
        for route in &mut self.routes {
            if route.interface == port {
                route.interface = master.into();
            }
        }
        taken
    }

    /// Changes this state so `port` becomes a port of the bridge `bridge` that carries the
    /// port's addresses and routes: a host reached through `port` keeps its address once VMs
    /// share the port. The port stays up without addresses; the bridge is added if missing.
    pub fn move_to_bridge(&mut self, port: &str, bridge: &str) {
        let (moved_addresses, port_up) = self.take_port(port, bridge);
        match self
            .interfaces
            .iter_mut()
            .find(|config| config.name == bridge)
        {
            Some(config) => {
                if let InterfaceKind::Bridge { ports } = &mut config.kind {
                    if !ports.iter().any(|existing| existing == port) {
                        ports.push(port.into());
                    }
                } else {
                    config.kind = InterfaceKind::Bridge {
                        ports: vec![port.into()],
                    };
                }
                for address in moved_addresses {
                    if !config.addresses.contains(&address) {
                        config.addresses.push(address);
                    }
                }
            }
            None => self.interfaces.push(InterfaceConfig {
                name: bridge.into(),
                kind: InterfaceKind::Bridge {
                    ports: vec![port.into()],
                },
                addresses: moved_addresses,
                mtu: None,
                up: port_up,
            }),
        }
    }

    /// Changes this state so `ports` become the ports of the active-backup bond `bond`, which
    /// carries their addresses and routes (a host reached through one of them keeps its
    /// address once it is bonded) and has `primary` as its primary port when given. The ports
    /// stay up without addresses; the bond is added if missing, and ports it has already
    /// are kept.
    pub fn move_to_bond(&mut self, ports: &[String], bond: &str, primary: Option<&str>) {
        let mut moved_addresses = Vec::new();
        for port in ports {
            moved_addresses.append(&mut self.take_port(port, bond).0);
        }
        let mut routes: Vec<Route> = Vec::new();
        for route in std::mem::take(&mut self.routes) {
            if !routes.contains(&route) {
                routes.push(route);
            }
        }
        self.routes = routes;
        let position = match self
            .interfaces
            .iter()
            .position(|config| config.name == bond)
        {
            Some(position) => position,
            None => {
                self.interfaces.push(InterfaceConfig {
                    name: bond.into(),
                    kind: InterfaceKind::Existing,
                    addresses: Vec::new(),
                    mtu: None,
                    up: true,
                });
                self.interfaces.len() - 1
            }
        };
        let config = &mut self.interfaces[position];
        let mut all_ports = match &config.kind {
            InterfaceKind::ActiveBackupBond { ports, .. } => ports.clone(),
            _ => Vec::new(),
        };
        for port in ports {
            if !all_ports.contains(port) {
                all_ports.push(port.clone());
            }
        }
        config.kind = InterfaceKind::ActiveBackupBond {
            ports: all_ports,
            primary: primary.map(Into::into),
        };
        config.up = true;
        for address in moved_addresses {
            if !config.addresses.contains(&address) {
                config.addresses.push(address);
            }
        }
    }
}

/// How `observed` links and routes differ from `desired`, in the order of `desired`.
pub fn differences(
    desired: &NetworkState,
    observed: &[ObservedLink],
    observed_routes: &[Route],
) -> Vec<Difference> {
    let mut found = Vec::new();
    let find = |name: &str| observed.iter().find(|link| link.name == name);
    for config in &desired.interfaces {
        let Some(link) = find(&config.name) else {
            found.push(Difference::MissingInterface {
                interface: config.name.clone(),
            });
            continue;
        };
        if let Some(kind) = config.kind.kernel_kind() {
            if link.kind.as_deref() != Some(kind) {
                found.push(Difference::WrongKind {
                    interface: config.name.clone(),
                    wanted: kind.into(),
                    found: link.kind.clone().unwrap_or_else(|| "none".into()),
                });
            }
        }
        for address in &config.addresses {
            if !link.addresses.contains(address) {
                found.push(Difference::MissingAddress {
                    interface: config.name.clone(),
                    address: *address,
                });
            }
        }
        for address in &link.addresses {
            if !config.addresses.contains(address) && !is_link_local(address) {
                found.push(Difference::ExtraAddress {
                    interface: config.name.clone(),
                    address: *address,
                });
            }
        }
        match config.mtu {
            Some(mtu) if mtu != link.mtu => found.push(Difference::WrongMtu {
                interface: config.name.clone(),
                wanted: mtu,
                found: link.mtu,
            }),
            _ => {}
        }
        if config.up != link.up {
            found.push(Difference::WrongAdminState {
                interface: config.name.clone(),
                wanted_up: config.up,
            });
        }
        for port in config.kind.ports() {
            let master = find(port).and_then(|link| link.master.clone());
            if master.as_deref() != Some(config.name.as_str()) {
                found.push(Difference::NotAPort {
                    port: port.clone(),
                    master: config.name.clone(),
                    found: master,
                });
            }
        }
        if let InterfaceKind::ActiveBackupBond {
            primary: Some(primary),
            ..
        } = &config.kind
        {
            if link.bond_primary.as_ref() != Some(primary) {
                found.push(Difference::WrongPrimary {
                    bond: config.name.clone(),
                    wanted: primary.clone(),
                    found: link.bond_primary.clone(),
                });
            }
        }
    }
    for route in &desired.routes {
        if !observed_routes.iter().any(|actual| route.matches(actual)) {
            found.push(Difference::MissingRoute {
                route: route.clone(),
            });
        }
    }
    let managed = |name: &str| desired.interfaces.iter().any(|config| config.name == name);
    for actual in observed_routes {
        if managed(&actual.interface) && !desired.routes.iter().any(|route| route.matches(actual)) {
            found.push(Difference::ExtraRoute {
                route: actual.clone(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> IpCidr {
        text.parse().unwrap()
    }

    fn route(destination: &str, gateway: &str, interface: &str) -> Route {
        Route {
            destination: cidr(destination),
            gateway: Some(gateway.parse().unwrap()),
            interface: interface.into(),
            metric: None,
        }
    }

    fn observed(
        name: &str,
        kind: Option<&str>,
        addresses: &[&str],
        master: Option<&str>,
    ) -> ObservedLink {
        ObservedLink {
            name: name.into(),
            kind: kind.map(Into::into),
            addresses: addresses.iter().map(|text| cidr(text)).collect(),
            mtu: 1500,
            up: true,
            master: master.map(Into::into),
            bond_primary: None,
        }
    }

    fn eth0_with_address() -> NetworkState {
        NetworkState {
            interfaces: vec![InterfaceConfig {
                name: "eth0".into(),
                kind: InterfaceKind::Existing,
                addresses: vec![cidr("192.0.2.10/24")],
                mtu: Some(1500),
                up: true,
            }],
            routes: vec![route("0.0.0.0/0", "192.0.2.1", "eth0")],
            dns: None,
        }
    }

    fn check(desired: &NetworkState, links: &[ObservedLink], routes: &[Route], expected: &[&str]) {
        let found: Vec<String> = differences(desired, links, routes)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_matching_state_has_no_differences() {
        let links = [observed("eth0", None, &["192.0.2.10/24"], None)];
        let routes = [route("0.0.0.0/0", "192.0.2.1", "eth0")];
        check(&eth0_with_address(), &links, &routes, &[]);
    }

    #[test]
    fn link_local_addresses_are_not_extra() {
        let links = [observed(
            "eth0",
            None,
            &["192.0.2.10/24", "fe80::1/64"],
            None,
        )];
        let routes = [route("0.0.0.0/0", "192.0.2.1", "eth0")];
        check(&eth0_with_address(), &links, &routes, &[]);
    }

    #[test]
    fn every_difference_is_named() {
        let mut desired = eth0_with_address();
        desired.interfaces[0].mtu = Some(9000);
        desired.interfaces.push(InterfaceConfig {
            name: "br0".into(),
            kind: InterfaceKind::Bridge {
                ports: vec!["eth1".into()],
            },
            addresses: vec![],
            mtu: None,
            up: false,
        });
        desired.interfaces.push(InterfaceConfig {
            name: "eth0.7".into(),
            kind: InterfaceKind::Vlan {
                parent: "eth0".into(),
                id: 7,
            },
            addresses: vec![],
            mtu: None,
            up: true,
        });
        let mut eth0 = observed("eth0", None, &["198.51.100.5/24"], None);
        eth0.up = false;
        let links = [
            eth0,
            observed("br0", Some("veth"), &[], None),
            observed("eth1", None, &[], Some("br9")),
        ];
        let routes = [route("203.0.113.0/24", "198.51.100.1", "eth0")];
        check(
            &desired,
            &links,
            &routes,
            &[
                "eth0: address 192.0.2.10/24 is missing",
                "eth0: address 198.51.100.5/24 should not be there",
                "eth0: MTU is 1500, wanted 9000",
                "eth0: is down, wanted up",
                "br0: is a veth interface, wanted a bridge",
                "br0: is up, wanted down",
                "eth1: is a port of br9, wanted br0",
                "eth0.7: does not exist",
                "route default via 192.0.2.1 dev eth0 is missing",
                "route 203.0.113.0/24 via 198.51.100.1 dev eth0 should not be there",
            ],
        );
    }

    #[test]
    fn routes_of_unmanaged_interfaces_are_not_extra() {
        let links = [observed("eth0", None, &["192.0.2.10/24"], None)];
        let routes = [
            route("0.0.0.0/0", "192.0.2.1", "eth0"),
            route("203.0.113.0/24", "198.51.100.1", "eth5"),
        ];
        check(&eth0_with_address(), &links, &routes, &[]);
    }

    #[test]
    fn moving_to_a_bridge_carries_addresses_and_routes() {
        let mut state = eth0_with_address();
        state.move_to_bridge("eth0", "br0");
        assert_eq!(state.interfaces[0].name, "eth0");
        assert!(state.interfaces[0].addresses.is_empty());
        assert!(state.interfaces[0].up);
        let bridge = &state.interfaces[1];
        assert_eq!(bridge.name, "br0");
        assert_eq!(
            bridge.kind,
            InterfaceKind::Bridge {
                ports: vec!["eth0".into()]
            }
        );
        assert_eq!(bridge.addresses, vec![cidr("192.0.2.10/24")]);
        assert_eq!(state.routes, vec![route("0.0.0.0/0", "192.0.2.1", "br0")]);
        assert_eq!(state.involved_interfaces(), vec!["eth0", "br0"]);
    }

    #[test]
    fn moving_a_second_port_keeps_the_first() {
        let mut state = eth0_with_address();
        state.move_to_bridge("eth0", "br0");
        state.move_to_bridge("eth1", "br0");
        assert_eq!(
            state.interfaces[1].kind,
            InterfaceKind::Bridge {
                ports: vec!["eth0".into(), "eth1".into()]
            }
        );
        assert_eq!(state.interfaces[2].name, "eth1");
        assert_eq!(state.interfaces[1].addresses, vec![cidr("192.0.2.10/24")]);
    }

    #[test]
    fn moving_to_a_bond_carries_addresses_and_routes_of_every_port() {
        let mut state = eth0_with_address();
        state.interfaces.push(InterfaceConfig {
            name: "eth1".into(),
            kind: InterfaceKind::Existing,
            addresses: vec![cidr("198.51.100.7/24")],
            mtu: None,
            up: false,
        });
        state.routes.push(route("0.0.0.0/0", "192.0.2.1", "eth1"));
        state.move_to_bond(&["eth0".into(), "eth1".into()], "bond0", Some("eth1"));
        assert!(state.interfaces[0].addresses.is_empty());
        assert!(state.interfaces[1].addresses.is_empty());
        assert!(state.interfaces[1].up);
        let bond = &state.interfaces[2];
        assert_eq!(bond.name, "bond0");
        assert_eq!(
            bond.kind,
            InterfaceKind::ActiveBackupBond {
                ports: vec!["eth0".into(), "eth1".into()],
                primary: Some("eth1".into()),
            }
        );
        assert_eq!(
            bond.addresses,
            vec![cidr("192.0.2.10/24"), cidr("198.51.100.7/24")]
        );
        assert!(bond.up);
        assert_eq!(state.routes, vec![route("0.0.0.0/0", "192.0.2.1", "bond0")]);
        assert_eq!(state.involved_interfaces(), vec!["eth0", "eth1", "bond0"]);
    }

    #[test]
    fn moving_to_an_existing_bond_keeps_its_ports_and_addresses() {
        let mut state = NetworkState::default();
        state.move_to_bond(&["eth0".into()], "bond0", None);
        state.interfaces[1].addresses.push(cidr("192.0.2.20/24"));
        state.move_to_bond(&["eth1".into()], "bond0", None);
        let bond = &state.interfaces[1];
        assert_eq!(
            bond.kind,
            InterfaceKind::ActiveBackupBond {
                ports: vec!["eth0".into(), "eth1".into()],
                primary: None,
            }
        );
        assert_eq!(bond.addresses, vec![cidr("192.0.2.20/24")]);
        assert_eq!(state.interfaces[2].name, "eth1");
    }

    #[test]
    fn a_bond_with_another_primary_port_differs() {
        let desired = NetworkState {
            interfaces: vec![InterfaceConfig {
                name: "bond0".into(),
                kind: InterfaceKind::ActiveBackupBond {
                    ports: vec!["eth0".into(), "eth1".into()],
                    primary: Some("eth1".into()),
                },
                addresses: vec![],
                mtu: None,
                up: true,
            }],
            ..NetworkState::default()
        };
        let mut bond = observed("bond0", Some("bond"), &[], None);
        let ports = [
            observed("eth0", None, &[], Some("bond0")),
            observed("eth1", None, &[], Some("bond0")),
        ];
        let links = |bond: &ObservedLink| [bond.clone(), ports[0].clone(), ports[1].clone()];
        check(
            &desired,
            &links(&bond),
            &[],
            &["bond0: has no primary port, wanted eth1"],
        );
        bond.bond_primary = Some("eth0".into());
        check(
            &desired,
            &links(&bond),
            &[],
            &["bond0: primary port is eth0, wanted eth1"],
        );
        bond.bond_primary = Some("eth1".into());
        check(&desired, &links(&bond), &[], &[]);
    }

    #[test]
    fn a_bond_without_a_primary_round_trips_through_json_without_one() {
        let kind = InterfaceKind::ActiveBackupBond {
            ports: vec!["eth0".into()],
            primary: None,
        };
        let text = serde_json::to_string(&kind).unwrap();
        assert_eq!(text, r#"{"type":"active-backup-bond","ports":["eth0"]}"#);
        assert_eq!(serde_json::from_str::<InterfaceKind>(&text).unwrap(), kind);
    }

    #[test]
    fn json_form_round_trips() {
        let mut state = eth0_with_address();
        state.move_to_bridge("eth0", "br0");
        let text = serde_json::to_string(&state).unwrap();
        assert!(
            text.contains(r#""kind":{"type":"bridge","ports":["eth0"]}"#),
            "{text}"
        );
        let back: NetworkState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn a_malformed_cidr_in_json_is_rejected_with_the_cidr_error() {
        let text = r#"{"interfaces":[{"name":"eth0","addresses":["192.0.2.10/33"],"up":true}]}"#;
        let error = serde_json::from_str::<NetworkState>(text).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("prefix length 33 is out of range 0..=32"),
            "{error}"
        );
    }
}
