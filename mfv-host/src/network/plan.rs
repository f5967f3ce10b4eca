//! The desired network, computed without touching the system: the configuration's
//! `[network]` section or `mfv.net=` turned into a [`NetworkState`] plus the interfaces that
//! get DHCP ([`NetworkSteps`]), and the states `mfv net` asks for. Pure functions, so every
//! rule here is unit-tested without root.

use std::net::IpAddr;
use std::path::PathBuf;

use mfv_config::cmdline::{NetProvisioning, StaticAddress};
use mfv_config::schema::{InterfaceMode, NetworkConfig};
use mfv_linux::check_interface_name;
use mfv_net::{
    DnsConfig, InterfaceConfig, InterfaceKind, IpCidr, Ipv4Cidr, Ipv6Cidr, Link, NetworkState,
    Route,
};

use super::NetworkError;

/// Where the host's network comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkPlan {
    /// Neither `mfv.net=` nor a configuration: loopback only.
    LoopbackOnly,
    /// `mfv.net=` on the kernel command line.
    BootOption(NetProvisioning),
    /// The `[network]` section of the configuration found on `device`.
    Config {
        /// The volume the configuration came from.
        device: PathBuf,
        /// Its `[network]` section.
        network: NetworkConfig,
    },
}

impl NetworkPlan {
    /// `mfv.net=` when given, else the configuration's network, else loopback only.
    pub fn choose(
        boot_option: Option<&NetProvisioning>,
        config: Option<(&NetworkConfig, PathBuf)>,
    ) -> NetworkPlan {
        match (boot_option, config) {
            (Some(provisioning), _) => NetworkPlan::BootOption(provisioning.clone()),
            (None, Some((network, device))) => NetworkPlan::Config {
                device,
                network: network.clone(),
            },
            (None, None) => NetworkPlan::LoopbackOnly,
        }
    }
}

/// What is done once the interfaces are known: a static state to apply, then DHCP clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSteps {
    /// Applied first, when it names any interface.
    pub state: NetworkState,
    /// Interfaces that get their address by DHCP, in order.
    pub dhcp: Vec<String>,
}

/// The interface `mfv.net=` names, if any.
pub fn named_interface(provisioning: &NetProvisioning) -> Option<&str> {
    match provisioning {
        NetProvisioning::Dhcp { interface } => interface.as_deref(),
        NetProvisioning::Static(StaticAddress { interface, .. }) => interface.as_deref(),
    }
}

/// The steps of `mfv.net=` on `interface`: DHCP, or the address with its gateway and DNS.
pub fn boot_option_steps(provisioning: &NetProvisioning, interface: &str) -> NetworkSteps {
    match provisioning {
        NetProvisioning::Dhcp { .. } => NetworkSteps {
            state: NetworkState::default(),
            dhcp: vec![interface.to_owned()],
        },
        NetProvisioning::Static(address) => {
            let dns = (!address.dns.is_empty()).then(|| DnsConfig {
                nameservers: address.dns.clone(),
                search: Vec::new(),
                options: Vec::new(),
            });
            NetworkSteps {
                state: NetworkState {
                    interfaces: vec![InterfaceConfig {
                        name: interface.to_owned(),
                        kind: InterfaceKind::Existing,
                        addresses: cidr(address.address, address.prefix_len)
                            .into_iter()
                            .collect(),
                        mtu: None,
                        up: true,
                    }],
                    routes: address
                        .gateway
                        .map(|gateway| Route::default_via(gateway, interface))
                        .into_iter()
                        .collect(),
                    dns,
                },
                dhcp: Vec::new(),
            }
        }
    }
}

/// An address with its prefix length; `None` when the prefix is too long (the command line
/// and configuration parsers have refused those already).
pub fn cidr(address: IpAddr, prefix_len: u8) -> Option<IpCidr> {
    match address {
        IpAddr::V4(v4) => Ipv4Cidr::new(v4, prefix_len).ok().map(IpCidr::V4),
        IpAddr::V6(v6) => Ipv6Cidr::new(v6, prefix_len).ok().map(IpCidr::V6),
    }
}

/// The steps of a configuration's `[network]` section: every interface up with its static
/// addresses, gateways and MTU (VLANs after the interfaces they sit on, then bonds, the bridge
/// last, each with its ports), the DNS servers, then DHCP on the interfaces in `dhcp` mode.
pub fn config_steps(network: &NetworkConfig) -> NetworkSteps {
    let bridge = network.bridge.as_ref();
    let mut interfaces = Vec::new();
    let mut routes = Vec::new();
    let mut dhcp = Vec::new();
    for interface in &network.interfaces {
        let kind = match (&interface.vlan, &interface.bond, bridge) {
            (Some(vlan), _, _) => InterfaceKind::Vlan {
                parent: vlan.parent.clone(),
                id: vlan.id,
            },
            (None, Some(bond), _) => InterfaceKind::ActiveBackupBond {
                ports: bond.ports.clone(),
                primary: bond.primary.clone(),
            },
            (None, None, Some(bridge)) if bridge.name == interface.name => InterfaceKind::Bridge {
                ports: bridge.ports.clone(),
            },
            (None, None, _) => InterfaceKind::Existing,
        };
        let addresses = match interface.mode {
            InterfaceMode::Static => interface
                .addresses
                .iter()
                .filter_map(|address| cidr(address.address(), address.prefix()))
                .collect(),
            InterfaceMode::Dhcp | InterfaceMode::Manual => Vec::new(),
        };
        if interface.mode == InterfaceMode::Dhcp {
            dhcp.push(interface.name.clone());
        }
        let gateways = [
            interface.gateway.map(IpAddr::V4),
            interface.gateway6.map(IpAddr::V6),
        ];
        routes.extend(
            gateways
                .into_iter()
                .flatten()
                .map(|gateway| Route::default_via(gateway, &interface.name)),
        );
        interfaces.push(InterfaceConfig {
            name: interface.name.clone(),
            kind,
            addresses,
            mtu: interface.mtu,
            up: true,
        });
    }
    if let Some(bridge) = bridge
        && !interfaces.iter().any(|config| config.name == bridge.name)
    {
        interfaces.push(InterfaceConfig {
            name: bridge.name.clone(),
            kind: InterfaceKind::Bridge {
                ports: bridge.ports.clone(),
            },
            addresses: Vec::new(),
            mtu: None,
            up: true,
        });
    }
    let rank = |config: &InterfaceConfig| match config.kind {
        InterfaceKind::Existing => 0,
        InterfaceKind::Vlan { .. } => 1,
        InterfaceKind::ActiveBackupBond { .. } => 2,
        InterfaceKind::Bridge { .. } => 3,
    };
    interfaces.sort_by_key(rank);
    let dns = (!network.dns.servers.is_empty()).then(|| DnsConfig {
        nameservers: network.dns.servers.clone(),
        search: network.dns.search.clone(),
        options: Vec::new(),
    });
    NetworkSteps {
        state: NetworkState {
            interfaces,
            routes,
            dns,
        },
        dhcp,
    }
}

/// The state that replaces the network `previous` by `next` on a running host: `next`'s
/// state, plus every interface `previous` configured that `next` does not name, left up
/// without addresses (so its routes go too). Such an interface is not deleted, even one the
/// previous network created (a bridge, a bond, a VLAN): VMs or ports may still use it.
pub fn replacing_state(previous: &NetworkSteps, next: &NetworkSteps) -> NetworkState {
    let mut state = next.state.clone();
    let named = |name: &str| {
        state
            .interfaces
            .iter()
            .any(|config| config.name == name || config.kind.ports().iter().any(|p| p == name))
    };
    let released: Vec<InterfaceConfig> = previous
        .state
        .interfaces
        .iter()
        .filter(|config| !named(&config.name))
        .map(|config| InterfaceConfig {
            name: config.name.clone(),
            kind: InterfaceKind::Existing,
            addresses: Vec::new(),
            mtu: None,
            up: true,
        })
        .collect();
    state.interfaces.splice(0..0, released);
    state
}

/// The host name a DHCP client sends: the first label of `hostname`, when it is a valid one.
pub fn dhcp_hostname(hostname: &str) -> Option<String> {
    let label = hostname.split('.').next()?;
    let valid = !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    valid.then(|| label.to_owned())
}

/// The cards that can be picked: interfaces that are not virtual, have a hardware address and
/// are not the loopback, in kernel order.
pub fn nic_candidates(links: &[Link]) -> Vec<&Link> {
    let mut candidates: Vec<&Link> = links
        .iter()
        .filter(|link| {
            link.kind.is_none()
                && link.name != "lo"
                && link
                    .mac
                    .as_deref()
                    .is_some_and(|mac| mac != "00:00:00:00:00:00")
        })
        .collect();
    candidates.sort_by_key(|link| link.index);
    candidates
}

/// Fails unless `bond` can be an interface name and `ports` are distinct interfaces other
/// than the bond that include `primary`.
pub fn check_bond_ports(
    bond: &str,
    ports: &[String],
    primary: Option<&str>,
) -> Result<(), NetworkError> {
    check_interface_name(bond)?;
    for (index, port) in ports.iter().enumerate() {
        if port == bond {
            return Err(NetworkError::BondIsItsOwnPort {
                bond: bond.to_owned(),
            });
        }
        if ports[..index].contains(port) {
            return Err(NetworkError::PortNamedTwice { port: port.clone() });
        }
    }
    if let Some(primary) = primary
        && !ports.iter().any(|port| port == primary)
    {
        return Err(NetworkError::PrimaryNotAPort {
            primary: primary.to_owned(),
            ports: ports.to_vec(),
        });
    }
    Ok(())
}

/// The state `mfv net static` applies: the interface up with exactly `address`, a default
/// route through `gateway`, and `dns` as the resolver's servers.
pub fn static_state(
    interface: &str,
    address: IpCidr,
    gateway: Option<IpAddr>,
    dns: &[IpAddr],
) -> Result<NetworkState, NetworkError> {
    check_interface_name(interface)?;
    if let Some(gateway) = gateway
        && !address.contains(gateway)
    {
        return Err(NetworkError::GatewayOutsideNetwork {
            gateway,
            address,
            interface: interface.to_owned(),
        });
    }
    let dns = if dns.is_empty() {
        None
    } else {
        let config = DnsConfig {
            nameservers: dns.to_vec(),
            search: Vec::new(),
            options: Vec::new(),
        };
        config.render().map_err(NetworkError::Dns)?;
        Some(config)
    };
    Ok(NetworkState {
        interfaces: vec![InterfaceConfig {
            name: interface.to_owned(),
            kind: InterfaceKind::Existing,
            addresses: vec![address],
            mtu: None,
            up: true,
        }],
        routes: gateway
            .map(|gateway| Route::default_via(gateway, interface))
            .into_iter()
            .collect(),
        dns,
    })
}

/// The state `mfv net vlan` applies: the VLAN `name` up, keeping the addresses and routes it
/// has in `existing` when it exists already.
pub fn vlan_state(parent: &str, id: u16, name: &str, existing: NetworkState) -> NetworkState {
    let addresses = existing
        .interfaces
        .into_iter()
        .find(|config| config.name == name)
        .map(|config| config.addresses)
        .unwrap_or_default();
    NetworkState {
        interfaces: vec![InterfaceConfig {
            name: name.to_owned(),
            kind: InterfaceKind::Vlan {
                parent: parent.to_owned(),
                id,
            },
            addresses,
            mtu: None,
            up: true,
        }],
        routes: existing.routes,
        dns: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use mfv_config::cmdline::KernelCmdline;
    use mfv_config::schema::{BridgeConfig, VlanConfig};
    use mfv_net::OperState;

    use super::*;

    pub(crate) fn provisioning(spec: &str) -> NetProvisioning {
        let options = KernelCmdline::parse(&format!("mfv.net={spec}")).boot_options();
        assert!(options.warnings.is_empty(), "{:?}", options.warnings);
        options.net.unwrap()
    }

    pub(crate) fn cidr(text: &str) -> IpCidr {
        text.parse().unwrap()
    }

    pub(crate) fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A `[[network.interfaces]]` entry named `name` in `mode` with nothing else set.
    pub(crate) fn entry(name: &str, mode: InterfaceMode) -> mfv_config::schema::InterfaceConfig {
        mfv_config::schema::InterfaceConfig {
            name: name.into(),
            mode,
            addresses: vec![],
            gateway: None,
            gateway6: None,
            mtu: None,
            vlan: None,
            bond: None,
        }
    }

    /// br0 (static, IPv4 and IPv6 with gateways) over eth0 (manual, MTU 9000), the VLAN
    /// eth0.7 by DHCP, and a DNS server with a search domain.
    pub(crate) fn config_network() -> NetworkConfig {
        use mfv_config::schema::InterfaceConfig as Entry;
        NetworkConfig {
            interfaces: vec![
                Entry {
                    addresses: vec![
                        "192.0.2.10/24".parse().unwrap(),
                        "2001:db8::10/64".parse().unwrap(),
                    ],
                    gateway: Some("192.0.2.1".parse().unwrap()),
                    gateway6: Some("2001:db8::1".parse().unwrap()),
                    ..entry("br0", InterfaceMode::Static)
                },
                Entry {
                    mtu: Some(9000),
                    ..entry("eth0", InterfaceMode::Manual)
                },
                Entry {
                    vlan: Some(VlanConfig {
                        parent: "eth0".into(),
                        id: 7,
                    }),
                    ..entry("eth0.7", InterfaceMode::Dhcp)
                },
            ],
            bridge: Some(BridgeConfig {
                name: "br0".into(),
                ports: vec!["eth0".into()],
                stp: false,
            }),
            dns: mfv_config::schema::DnsConfig {
                servers: vec![ip("192.0.2.53")],
                search: vec!["example.org".into()],
            },
        }
    }

    /// The interfaces of `steps`, in the order they are applied.
    fn interface_names(steps: &NetworkSteps) -> Vec<&str> {
        steps
            .state
            .interfaces
            .iter()
            .map(|config| config.name.as_str())
            .collect()
    }

    #[test]
    fn a_replacing_state_releases_the_interfaces_only_the_previous_network_named() {
        let previous = config_steps(&config_network());
        let mut next_network = NetworkConfig::default();
        next_network
            .interfaces
            .push(mfv_config::schema::InterfaceConfig {
                addresses: vec!["198.51.100.10/24".parse().unwrap()],
                ..entry("eth0.7", InterfaceMode::Static)
            });
        let next = config_steps(&next_network);
        let state = replacing_state(&previous, &next);
        let names: Vec<&str> = state.interfaces.iter().map(|c| c.name.as_str()).collect();
        // eth0.7 is named again; eth0 and br0 are released first.
        assert_eq!(names, ["eth0", "br0", "eth0.7"]);
        for released in &state.interfaces[..2] {
            assert_eq!(released.kind, InterfaceKind::Existing);
            assert!(released.addresses.is_empty() && released.up && released.mtu.is_none());
        }
        assert_eq!(state.interfaces[2].addresses, [cidr("198.51.100.10/24")]);
        assert!(state.routes.is_empty() && state.dns.is_none());
        // A port of a new bridge is the bridge's, not released.
        let bridged = NetworkSteps {
            state: NetworkState {
                interfaces: vec![InterfaceConfig {
                    name: "br1".into(),
                    kind: InterfaceKind::Bridge {
                        ports: vec!["eth0".into()],
                    },
                    addresses: Vec::new(),
                    mtu: None,
                    up: true,
                }],
                ..NetworkState::default()
            },
            dhcp: Vec::new(),
        };
        let state = replacing_state(&previous, &bridged);
        let names: Vec<&str> = state.interfaces.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["eth0.7", "br0", "br1"]);
    }

    #[test]
    fn a_configuration_becomes_a_state_and_dhcp_clients() {
        let steps = config_steps(&config_network());
        assert_eq!(interface_names(&steps), ["eth0", "eth0.7", "br0"]);
        let [eth0, vlan, bridge] = &steps.state.interfaces[..] else {
            panic!("three interfaces");
        };
        assert_eq!(eth0.kind, InterfaceKind::Existing);
        assert_eq!(eth0.mtu, Some(9000));
        assert!(eth0.addresses.is_empty() && eth0.up);
        assert_eq!(
            vlan.kind,
            InterfaceKind::Vlan {
                parent: "eth0".into(),
                id: 7
            }
        );
        assert_eq!(
            bridge.kind,
            InterfaceKind::Bridge {
                ports: vec!["eth0".into()]
            }
        );
        assert_eq!(
            bridge.addresses,
            [cidr("192.0.2.10/24"), cidr("2001:db8::10/64")]
        );
        assert_eq!(
            steps.state.routes,
            [
                Route::default_via(ip("192.0.2.1"), "br0"),
                Route::default_via(ip("2001:db8::1"), "br0")
            ]
        );
        let dns = steps.state.dns.unwrap();
        assert_eq!(dns.nameservers, [ip("192.0.2.53")]);
        assert_eq!(dns.search, ["example.org"]);
        assert_eq!(steps.dhcp, ["eth0.7"]);
    }

    #[test]
    fn a_bond_comes_after_its_ports_and_before_the_bridge_it_is_a_port_of() {
        let config = mfv_config::schema::parse_config(
            "version = 1\n[host]\nhostname = \"h\"\n\
             [[network.interfaces]]\nname = \"br0\"\n\
             [[network.interfaces]]\nname = \"bond0\"\nmode = \"manual\"\n\
             bond = { ports = [\"eth0\", \"eth1\"], primary = \"eth1\" }\n\
             [[network.interfaces]]\nname = \"eth0\"\nmode = \"manual\"\n\
             [[network.interfaces]]\nname = \"eth1\"\nmode = \"manual\"\n\
             [network.bridge]\nports = [\"bond0\"]\n",
        )
        .unwrap();
        let steps = config_steps(&config.network);
        assert_eq!(interface_names(&steps), ["eth0", "eth1", "bond0", "br0"]);
        assert_eq!(
            steps.state.interfaces[2].kind,
            InterfaceKind::ActiveBackupBond {
                ports: vec!["eth0".into(), "eth1".into()],
                primary: Some("eth1".into()),
            }
        );
        assert_eq!(steps.dhcp, ["br0"]);
    }

    #[test]
    fn a_bridge_without_an_interface_entry_is_added_without_addresses() {
        let mut network = config_network();
        network.interfaces.remove(0);
        network.dns.servers.clear();
        let steps = config_steps(&network);
        let bridge = steps.state.interfaces.last().unwrap();
        assert_eq!(bridge.name, "br0");
        assert!(bridge.addresses.is_empty());
        assert!(steps.state.routes.is_empty());
        assert_eq!(steps.state.dns, None);
    }

    #[test]
    fn the_boot_option_takes_precedence_over_the_configuration() {
        let network = config_network();
        let option = provisioning("eth1:dhcp");
        let device = PathBuf::from("/dev/sda1");
        assert_eq!(
            NetworkPlan::choose(Some(&option), Some((&network, device.clone()))),
            NetworkPlan::BootOption(option.clone())
        );
        assert_eq!(
            NetworkPlan::choose(None, Some((&network, device.clone()))),
            NetworkPlan::Config {
                device,
                network: network.clone()
            }
        );
        assert_eq!(NetworkPlan::choose(None, None), NetworkPlan::LoopbackOnly);
    }

    #[test]
    fn an_ipv6_static_address_keeps_its_family() {
        let steps = boot_option_steps(&provisioning("2001:db8::5/64,gw=2001:db8::1"), "eth0");
        assert_eq!(
            steps.state.interfaces[0].addresses,
            [cidr("2001:db8::5/64")]
        );
        assert_eq!(
            steps.state.routes,
            [Route::default_via(ip("2001:db8::1"), "eth0")]
        );
        assert_eq!(steps.state.dns, None);
        assert!(steps.dhcp.is_empty());
    }

    #[test]
    fn the_dhcp_host_name_is_the_first_valid_label() {
        assert_eq!(
            dhcp_hostname("vmhost1.example.org").as_deref(),
            Some("vmhost1")
        );
        assert_eq!(dhcp_hostname("minifed").as_deref(), Some("minifed"));
        for bad in ["", "-x", "x-", "a_b", &"a".repeat(64)] {
            assert_eq!(dhcp_hostname(bad), None, "{bad}");
        }
    }

    #[test]
    fn candidates_are_real_cards_in_kernel_order() {
        let link = |name: &str, index: u32, kind: Option<&str>, mac: Option<&str>| Link {
            name: name.into(),
            index,
            mac: mac.map(Into::into),
            mtu: 1500,
            admin_up: false,
            state: OperState::Down,
            carrier: false,
            kind: kind.map(Into::into),
            master: None,
        };
        let links = [
            link("lo", 1, None, Some("00:00:00:00:00:00")),
            link("eth1", 3, None, Some("52:54:00:12:34:57")),
            link("eth0", 2, None, Some("52:54:00:12:34:56")),
            link("br0", 4, Some("bridge"), Some("52:54:00:12:34:58")),
            link("sit0", 5, None, None),
        ];
        let names: Vec<&str> = nic_candidates(&links)
            .iter()
            .map(|link| link.name.as_str())
            .collect();
        assert_eq!(names, ["eth0", "eth1"]);
    }

    #[test]
    fn bond_ports_are_checked() {
        let ports = |names: &[&str]| {
            names
                .iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>()
        };
        check_bond_ports("bond0", &ports(&["eth0", "eth1"]), Some("eth0")).unwrap();
        check_bond_ports("bond0", &ports(&["eth0"]), None).unwrap();
        for (bond, names, primary, expected) in [
            (
                "bond0",
                &["eth0", "eth1"][..],
                Some("eth2"),
                "the primary eth2 is not one of the ports (eth0, eth1)",
            ),
            ("bond0", &["eth0", "eth0"], None, "port eth0 is named twice"),
            (
                "bond0",
                &["bond0"],
                None,
                "bond0 cannot be a port of itself",
            ),
        ] {
            let error = check_bond_ports(bond, &ports(names), primary).unwrap_err();
            assert_eq!(error.to_string(), expected);
        }
        let error = check_bond_ports("a/b", &ports(&["eth0"]), None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"a/b\" contains '/', which interface names cannot"
        );
    }

    #[test]
    fn the_static_state_has_the_address_route_and_dns() {
        let state = static_state(
            "eth0",
            cidr("192.0.2.10/24"),
            Some(ip("192.0.2.1")),
            &[ip("192.0.2.53")],
        )
        .unwrap();
        assert_eq!(state.interfaces.len(), 1);
        assert_eq!(state.interfaces[0].addresses, [cidr("192.0.2.10/24")]);
        assert!(state.interfaces[0].up);
        assert_eq!(state.routes, [Route::default_via(ip("192.0.2.1"), "eth0")]);
        assert_eq!(state.dns.unwrap().nameservers, [ip("192.0.2.53")]);
        let bare = static_state("eth0", cidr("192.0.2.10/24"), None, &[]).unwrap();
        assert!(bare.routes.is_empty());
        assert!(bare.dns.is_none());
    }

    #[test]
    fn a_gateway_outside_the_network_is_refused() {
        let error =
            static_state("eth0", cidr("192.0.2.10/24"), Some(ip("198.51.100.1")), &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "gateway 198.51.100.1 is not in the network of 192.0.2.10/24: the route through it \
             would not reach it from eth0"
        );
    }

    #[test]
    fn too_many_dns_servers_are_refused() {
        let servers = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"].map(ip);
        let error = static_state("eth0", cidr("192.0.2.10/24"), None, &servers).unwrap_err();
        let message = mfv_linux::error_chain(&error);
        assert!(message.starts_with("invalid DNS servers: "), "{message}");
    }

    #[test]
    fn the_vlan_state_keeps_an_existing_vlans_addresses() {
        let fresh = vlan_state("eth0", 7, "eth0.7", NetworkState::default());
        assert_eq!(
            fresh.interfaces[0].kind,
            InterfaceKind::Vlan {
                parent: "eth0".into(),
                id: 7
            }
        );
        assert!(fresh.interfaces[0].addresses.is_empty());
        let existing = NetworkState {
            interfaces: vec![InterfaceConfig {
                name: "eth0.7".into(),
                kind: InterfaceKind::Existing,
                addresses: vec![cidr("198.51.100.7/24")],
                mtu: Some(1500),
                up: false,
            }],
            routes: vec![Route::default_via(ip("198.51.100.1"), "eth0.7")],
            dns: None,
        };
        let kept = vlan_state("eth0", 7, "eth0.7", existing);
        assert_eq!(kept.interfaces[0].addresses, [cidr("198.51.100.7/24")]);
        assert!(kept.interfaces[0].up);
        assert_eq!(kept.routes.len(), 1);
    }
}
