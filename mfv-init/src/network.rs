//! The `network` boot phase: loopback up, then the host's network from `mfv.net=` (which takes
//! precedence) or the configuration's `[network]` section. Static settings go through
//! mfv-net's `apply` (verified, rolled back on failure); DHCP clients keep running in the
//! background on a tokio runtime thread of mfv-init and log their events on the console.
//!
//! The network work sits behind the narrow [`Network`] trait: [`NetlinkNetwork`] is the real
//! one, tests use a recording fake. Console lines (after `mfv-init: `):
//!
//! - `net: lo up`
//! - `net: from mfv.net=SPEC`, `net: from the configuration on DEVICE`, or
//!   `net: not configured (no mfv.net= and no configuration): loopback only`
//! - `net: IFACE picked: the first network card with carrier` (when no interface is named)
//! - `net: CHANGE` for each change a static apply made (`add 10.0.2.20/24 to eth0`)
//! - `net: IFACE: DHCP client started`
//! - from the DHCP clients, later: `net: eth0 bound 10.0.2.15/24 via 10.0.2.2 (lease 86400 s)`,
//!   `net: eth0 renewed ...`, `net: eth0 refused by SERVER...`, `net: eth0 lease of ADDRESS
//!   expired; address removed`, `net: eth0: DHCP client stopped: ERROR`

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mfv_config::cmdline::{NetProvisioning, StaticAddress};
use mfv_config::schema::{InterfaceMode, NetworkConfig};
use mfv_net::dhcp::{
    DhcpClient, DhcpConfig, DhcpEvent, Lease, NetlinkLeaseApplier, Timing, UdpTransport, parse_mac,
};
use mfv_net::{
    ApplyOptions, DnsConfig, InterfaceConfig, InterfaceKind, IpCidr, Ipv4Cidr, Ipv6Cidr, Link,
    Netlink, NetworkState, Route,
};

use crate::clock::{BootClock, Clock};
use crate::console::Console;

/// How long the phase waits for a network card with carrier when it has to pick one.
pub const CARRIER_WAIT: Duration = Duration::from_secs(5);

/// How often the carrier of the candidate cards is looked at.
const CARRIER_POLL: Duration = Duration::from_millis(50);

/// The first wait before a DHCP retransmission: 1 s instead of RFC 2131's 4 s, so that a
/// booting host whose first DISCOVER went out before the link was ready is not held up.
const DHCP_FIRST_RETRANSMIT: Duration = Duration::from_secs(1);

/// The network work of the `network` phase.
pub trait Network {
    /// Sets the loopback interface up.
    fn loopback_up(&mut self) -> anyhow::Result<()>;
    /// Sets the network cards up and returns the first one (in kernel order) that has carrier
    /// within `wait`; the others it set up are set down again.
    fn first_nic_with_carrier(&mut self, wait: Duration) -> anyhow::Result<String>;
    /// Applies `state` (verified, rolled back on failure); returns the changes made.
    fn apply(&mut self, state: &NetworkState) -> anyhow::Result<Vec<String>>;
    /// Sets `interface` up and starts a DHCP client on it that runs in the background,
    /// sending `hostname`, and logs its events on the console.
    fn start_dhcp(&mut self, interface: &str, hostname: Option<&str>) -> anyhow::Result<()>;
}

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

/// Runs the phase: loopback, then `plan`; each console line goes to `log`. `hostname` is sent
/// by the DHCP clients (its first label).
pub fn configure(
    network: &mut dyn Network,
    plan: &NetworkPlan,
    hostname: &str,
    log: &mut dyn FnMut(String),
) -> anyhow::Result<()> {
    network.loopback_up().context("cannot set lo up")?;
    log("net: lo up".to_owned());
    let steps = match plan {
        NetworkPlan::LoopbackOnly => {
            log("net: not configured (no mfv.net= and no configuration): loopback only".into());
            return Ok(());
        }
        NetworkPlan::BootOption(provisioning) => {
            log(format!("net: from mfv.net={provisioning}"));
            let interface = match named_interface(provisioning) {
                Some(name) => name.to_owned(),
                None => {
                    let picked = network.first_nic_with_carrier(CARRIER_WAIT)?;
                    log(format!(
                        "net: {picked} picked: the first network card with carrier"
                    ));
                    picked
                }
            };
            boot_option_steps(provisioning, &interface)
        }
        NetworkPlan::Config { device, network } => {
            log(format!(
                "net: from the configuration on {}",
                device.display()
            ));
            config_steps(network)
        }
    };
    if !steps.state.interfaces.is_empty() {
        let changes = network.apply(&steps.state)?;
        for change in changes {
            log(format!("net: {change}"));
        }
    }
    let hostname = dhcp_hostname(hostname);
    for interface in &steps.dhcp {
        network
            .start_dhcp(interface, hostname.as_deref())
            .with_context(|| format!("cannot start the DHCP client on {interface}"))?;
        log(format!("net: {interface}: DHCP client started"));
    }
    Ok(())
}

/// The interface `mfv.net=` names, if any.
fn named_interface(provisioning: &NetProvisioning) -> Option<&str> {
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
fn cidr(address: IpAddr, prefix_len: u8) -> Option<IpCidr> {
    match address {
        IpAddr::V4(v4) => Ipv4Cidr::new(v4, prefix_len).ok().map(IpCidr::V4),
        IpAddr::V6(v6) => Ipv6Cidr::new(v6, prefix_len).ok().map(IpCidr::V6),
    }
}

/// The steps of a configuration's `[network]` section: every interface up with its static
/// addresses, gateways and MTU (VLANs after the interfaces they sit on, the bridge last, with
/// its ports), the DNS servers, then DHCP on the interfaces in `dhcp` mode.
pub fn config_steps(network: &NetworkConfig) -> NetworkSteps {
    let bridge = network.bridge.as_ref();
    let mut interfaces = Vec::new();
    let mut routes = Vec::new();
    let mut dhcp = Vec::new();
    for interface in &network.interfaces {
        let kind = match (&interface.vlan, bridge) {
            (Some(vlan), _) => InterfaceKind::Vlan {
                parent: vlan.parent.clone(),
                id: vlan.id,
            },
            (None, Some(bridge)) if bridge.name == interface.name => InterfaceKind::Bridge {
                ports: bridge.ports.clone(),
            },
            (None, _) => InterfaceKind::Existing,
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

/// The console line for a DHCP client event on `interface`; `None` for the events not shown
/// (state changes, offers, ignored packets).
pub fn dhcp_event_line(interface: &str, event: &DhcpEvent) -> Option<String> {
    match event {
        DhcpEvent::Bound(lease) => {
            let mut line = format!("net: {interface} bound {}", lease.address);
            if let Some(router) = lease.routers.first() {
                let _ = write!(line, " via {router}");
            }
            let _ = write!(line, " ({})", lease_time(lease));
            Some(line)
        }
        DhcpEvent::Renewed(lease) => Some(format!(
            "net: {interface} renewed {} ({})",
            lease.address,
            lease_time(lease)
        )),
        DhcpEvent::Nak { server, message } => {
            let mut line = format!("net: {interface} refused by {server}");
            if let Some(message) = message {
                let _ = write!(line, " ({message})");
            }
            line.push_str("; asking again");
            Some(line)
        }
        DhcpEvent::Expired(lease) => Some(format!(
            "net: {interface} lease of {} expired; address removed",
            lease.address
        )),
        DhcpEvent::Released(lease) => Some(format!("net: {interface} released {}", lease.address)),
        DhcpEvent::LeaseFileProblem { problem } => Some(format!("net: {interface}: {problem}")),
        DhcpEvent::State(_) | DhcpEvent::Offered { .. } | DhcpEvent::PacketIgnored { .. } => None,
    }
}

/// `lease 86400 s`, or `lease infinite`.
fn lease_time(lease: &Lease) -> String {
    if lease.lease_seconds == u32::MAX {
        "lease infinite".to_owned()
    } else {
        format!("lease {} s", lease.lease_seconds)
    }
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

/// The real network: rtnetlink in this network namespace, through a tokio runtime with one
/// worker thread (`net`) started at first use; the DHCP clients run on it for the life of
/// the process.
#[derive(Debug)]
pub struct NetlinkNetwork {
    resolv_conf: PathBuf,
    connected: Option<(tokio::runtime::Runtime, Netlink)>,
}

impl NetlinkNetwork {
    /// Writes the resolver settings (static or from leases) to `resolv_conf`.
    pub fn new(resolv_conf: impl Into<PathBuf>) -> NetlinkNetwork {
        NetlinkNetwork {
            resolv_conf: resolv_conf.into(),
            connected: None,
        }
    }

    fn connection(&mut self) -> anyhow::Result<&(tokio::runtime::Runtime, Netlink)> {
        if self.connected.is_none() {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("net")
                .enable_all()
                .build()
                .context("cannot start the network runtime")?;
            let netlink = runtime.block_on(async { Netlink::connect() })?;
            self.connected = Some((runtime, netlink));
        }
        self.connected
            .as_ref()
            .context("the network runtime is not running")
    }
}

impl Network for NetlinkNetwork {
    fn loopback_up(&mut self) -> anyhow::Result<()> {
        let (runtime, netlink) = self.connection()?;
        Ok(runtime.block_on(netlink.set_up("lo"))?)
    }

    fn first_nic_with_carrier(&mut self, wait: Duration) -> anyhow::Result<String> {
        let (runtime, netlink) = self.connection()?;
        runtime.block_on(async {
            let links = netlink.links().await?;
            let candidates: Vec<Link> = nic_candidates(&links).into_iter().cloned().collect();
            if candidates.is_empty() {
                bail!("no network card to pick: none was found");
            }
            let mut raised = Vec::new();
            for link in candidates.iter().filter(|link| !link.admin_up) {
                netlink.set_up(&link.name).await?;
                raised.push(link.name.clone());
            }
            let started = Instant::now();
            let picked = loop {
                let links = netlink.links().await?;
                let with_carrier = nic_candidates(&links)
                    .into_iter()
                    .find(|link| link.carrier)
                    .map(|link| link.name.clone());
                if with_carrier.is_some() || started.elapsed() >= wait {
                    break with_carrier;
                }
                tokio::time::sleep(CARRIER_POLL).await;
            };
            for name in &raised {
                if picked.as_ref() != Some(name) {
                    // Left up, an unused card does no harm: a failure here is not worth
                    // failing the phase for.
                    let _ = netlink.set_down(name).await;
                }
            }
            let names: Vec<&str> = candidates.iter().map(|link| link.name.as_str()).collect();
            picked.with_context(|| {
                format!(
                    "no network card has carrier after {} s (looked at {})",
                    wait.as_secs_f64(),
                    names.join(", ")
                )
            })
        })
    }

    fn apply(&mut self, state: &NetworkState) -> anyhow::Result<Vec<String>> {
        let options = ApplyOptions {
            resolv_conf: Some(self.resolv_conf.clone()),
        };
        let (runtime, netlink) = self.connection()?;
        let report = runtime.block_on(mfv_net::apply(netlink, state, &options))?;
        Ok(report.changes)
    }

    fn start_dhcp(&mut self, interface: &str, hostname: Option<&str>) -> anyhow::Result<()> {
        let resolv_conf = self.resolv_conf.clone();
        let (runtime, netlink) = self.connection()?;
        let (config, transport) = runtime.block_on(async {
            let link = netlink.link_by_name(interface).await?;
            let mac = parse_mac(link.mac.as_deref().unwrap_or_default())?;
            netlink.set_up(interface).await?;
            let mut config = DhcpConfig::new(interface, mac);
            config.hostname = hostname.map(str::to_owned);
            config.release_on_shutdown = false;
            config.timing = Timing {
                first_retransmit: DHCP_FIRST_RETRANSMIT,
                acquire_timeout: None,
                ..Timing::default()
            };
            config.validate()?;
            let transport = UdpTransport::bind(interface)?;
            anyhow::Ok((config, transport))
        })?;
        let applier = NetlinkLeaseApplier::new(netlink.clone(), Some(resolv_conf));
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let client = DhcpClient::new(config, transport, applier).with_events(events);
        let name = interface.to_owned();
        runtime.spawn(async move {
            let mut console = Console::new(std::io::stdout());
            let run = client.run(std::future::pending::<()>());
            tokio::pin!(run);
            let ended = loop {
                tokio::select! {
                    ended = &mut run => break ended,
                    Some(event) = received.recv() => {
                        if let Some(line) = dhcp_event_line(&name, &event) {
                            console.line(BootClock.uptime(), line);
                        }
                    }
                }
            };
            // The events sent just before the end come first.
            while let Ok(event) = received.try_recv() {
                if let Some(line) = dhcp_event_line(&name, &event) {
                    console.line(BootClock.uptime(), line);
                }
            }
            if let Err(error) = ended {
                let error = anyhow::Error::new(error);
                console.line(
                    BootClock.uptime(),
                    format!("net: {name}: DHCP client stopped: {error:#}"),
                );
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use mfv_config::cmdline::KernelCmdline;
    use mfv_config::schema::{BridgeConfig, VlanConfig};
    use mfv_net::OperState;
    use mfv_net::dhcp::{DhcpState, IgnoreReason};

    use super::*;
    use crate::fake::FakeNetwork;

    fn provisioning(spec: &str) -> NetProvisioning {
        let options = KernelCmdline::parse(&format!("mfv.net={spec}")).boot_options();
        assert!(options.warnings.is_empty(), "{:?}", options.warnings);
        options.net.unwrap()
    }

    fn cidr(text: &str) -> IpCidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Runs the phase on `network`; returns the console lines, or the error after them.
    fn run(network: &mut FakeNetwork, plan: &NetworkPlan) -> (Vec<String>, Option<String>) {
        let mut lines = Vec::new();
        let result = configure(network, plan, "vmhost1.example.org", &mut |line| {
            lines.push(line)
        });
        (lines, result.err().map(|error| format!("{error:#}")))
    }

    #[test]
    fn without_settings_only_loopback_comes_up() {
        let mut network = FakeNetwork::default();
        let (lines, error) = run(&mut network, &NetworkPlan::LoopbackOnly);
        assert_eq!(error, None);
        assert_eq!(
            lines,
            [
                "net: lo up",
                "net: not configured (no mfv.net= and no configuration): loopback only"
            ]
        );
        assert_eq!(network.calls, ["loopback up"]);
    }

    #[test]
    fn dhcp_on_a_named_interface_starts_a_client_with_the_host_name() {
        let mut network = FakeNetwork::default();
        let plan = NetworkPlan::BootOption(provisioning("eth0:dhcp"));
        let (lines, error) = run(&mut network, &plan);
        assert_eq!(error, None);
        assert_eq!(
            lines,
            [
                "net: lo up",
                "net: from mfv.net=eth0:dhcp",
                "net: eth0: DHCP client started"
            ]
        );
        assert_eq!(network.calls, ["loopback up", "dhcp eth0 hostname vmhost1"]);
    }

    #[test]
    fn dhcp_without_an_interface_picks_the_first_card_with_carrier() {
        let mut network = FakeNetwork {
            nic_with_carrier: Some("ens3".into()),
            ..FakeNetwork::default()
        };
        let (lines, error) = run(&mut network, &NetworkPlan::BootOption(provisioning("dhcp")));
        assert_eq!(error, None);
        assert_eq!(
            lines,
            [
                "net: lo up",
                "net: from mfv.net=dhcp",
                "net: ens3 picked: the first network card with carrier",
                "net: ens3: DHCP client started"
            ]
        );
        assert_eq!(
            network.calls,
            [
                "loopback up",
                "first nic with carrier within 5s",
                "dhcp ens3 hostname vmhost1"
            ]
        );
    }

    #[test]
    fn no_card_with_carrier_fails_the_phase() {
        let mut network = FakeNetwork::default();
        let (lines, error) = run(&mut network, &NetworkPlan::BootOption(provisioning("dhcp")));
        assert_eq!(lines, ["net: lo up", "net: from mfv.net=dhcp"]);
        assert_eq!(
            error.as_deref(),
            Some("no network card has carrier after 5 s (looked at eth0)")
        );
    }

    #[test]
    fn a_static_address_is_applied_and_each_change_logged() {
        let mut network = FakeNetwork {
            apply_changes: vec![
                "add 10.0.2.20/24 to eth0".into(),
                "add the route default via 10.0.2.2 dev eth0".into(),
            ],
            ..FakeNetwork::default()
        };
        let plan =
            NetworkPlan::BootOption(provisioning("eth0:10.0.2.20/24,gw=10.0.2.2,dns=10.0.2.3"));
        let (lines, error) = run(&mut network, &plan);
        assert_eq!(error, None);
        assert_eq!(
            lines,
            [
                "net: lo up",
                "net: from mfv.net=eth0:10.0.2.20/24,gw=10.0.2.2,dns=10.0.2.3",
                "net: add 10.0.2.20/24 to eth0",
                "net: add the route default via 10.0.2.2 dev eth0"
            ]
        );
        assert_eq!(network.applied.len(), 1);
        let state = &network.applied[0];
        assert_eq!(state.interfaces[0].name, "eth0");
        assert_eq!(state.interfaces[0].addresses, [cidr("10.0.2.20/24")]);
        assert!(state.interfaces[0].up);
        assert_eq!(state.routes, [Route::default_via(ip("10.0.2.2"), "eth0")]);
        assert_eq!(state.dns.as_ref().unwrap().nameservers, [ip("10.0.2.3")]);
    }

    #[test]
    fn failures_of_loopback_apply_and_dhcp_are_errors() {
        let mut network = FakeNetwork {
            loopback_fails: true,
            ..FakeNetwork::default()
        };
        let (lines, error) = run(&mut network, &NetworkPlan::LoopbackOnly);
        assert!(lines.is_empty());
        assert_eq!(
            error.as_deref(),
            Some("cannot set lo up: set lo up failed: Operation not permitted")
        );

        let mut network = FakeNetwork {
            apply_fails: true,
            ..FakeNetwork::default()
        };
        let plan = NetworkPlan::BootOption(provisioning("eth0:10.0.2.20/24"));
        let (_, error) = run(&mut network, &plan);
        assert_eq!(
            error.as_deref(),
            Some("applying the network state failed; the previous state was restored")
        );

        let mut network = FakeNetwork {
            dhcp_fails: true,
            ..FakeNetwork::default()
        };
        let plan = NetworkPlan::BootOption(provisioning("eth0:dhcp"));
        let (lines, error) = run(&mut network, &plan);
        assert_eq!(lines, ["net: lo up", "net: from mfv.net=eth0:dhcp"]);
        assert_eq!(
            error.as_deref(),
            Some("cannot start the DHCP client on eth0: no interface named \"eth0\"")
        );
    }

    /// br0 (static, IPv4 and IPv6 with gateways) over eth0 (manual, MTU 9000), the VLAN
    /// eth0.7 by DHCP, and a DNS server with a search domain.
    fn config_network() -> NetworkConfig {
        use mfv_config::schema::InterfaceConfig as Entry;
        let entry = |name: &str, mode| Entry {
            name: name.into(),
            mode,
            addresses: vec![],
            gateway: None,
            gateway6: None,
            mtu: None,
            vlan: None,
        };
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

    #[test]
    fn a_configuration_becomes_a_state_and_dhcp_clients() {
        let steps = config_steps(&config_network());
        let names: Vec<&str> = steps
            .state
            .interfaces
            .iter()
            .map(|config| config.name.as_str())
            .collect();
        assert_eq!(names, ["eth0", "eth0.7", "br0"]);
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
    fn the_configuration_is_applied_then_dhcp_started() {
        let mut network = FakeNetwork {
            apply_changes: vec!["create bridge br0".into()],
            ..FakeNetwork::default()
        };
        let plan = NetworkPlan::Config {
            device: PathBuf::from("/dev/sda1"),
            network: config_network(),
        };
        let (lines, error) = run(&mut network, &plan);
        assert_eq!(error, None);
        assert_eq!(
            lines,
            [
                "net: lo up",
                "net: from the configuration on /dev/sda1",
                "net: create bridge br0",
                "net: eth0.7: DHCP client started"
            ]
        );
        assert_eq!(network.applied.len(), 1);
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

    fn lease(routers: &[&str], lease_seconds: u32) -> Lease {
        Lease {
            address: "10.0.2.15/24".parse().unwrap(),
            server: Ipv4Addr::new(10, 0, 2, 2),
            routers: routers
                .iter()
                .map(|router| router.parse().unwrap())
                .collect(),
            dns_servers: vec![Ipv4Addr::new(10, 0, 2, 3)],
            domain: None,
            mtu: None,
            lease_seconds,
            renew_seconds: lease_seconds / 2,
            rebind_seconds: lease_seconds / 8 * 7,
        }
    }

    #[test]
    fn dhcp_events_have_console_lines() {
        let line = |event: DhcpEvent| dhcp_event_line("eth0", &event);
        assert_eq!(
            line(DhcpEvent::Bound(lease(&["10.0.2.2"], 86400))).as_deref(),
            Some("net: eth0 bound 10.0.2.15/24 via 10.0.2.2 (lease 86400 s)")
        );
        assert_eq!(
            line(DhcpEvent::Bound(lease(&[], u32::MAX))).as_deref(),
            Some("net: eth0 bound 10.0.2.15/24 (lease infinite)")
        );
        assert_eq!(
            line(DhcpEvent::Renewed(lease(&["10.0.2.2"], 3600))).as_deref(),
            Some("net: eth0 renewed 10.0.2.15/24 (lease 3600 s)")
        );
        assert_eq!(
            line(DhcpEvent::Nak {
                server: Ipv4Addr::new(10, 0, 2, 2),
                message: Some("wrong network".into())
            })
            .as_deref(),
            Some("net: eth0 refused by 10.0.2.2 (wrong network); asking again")
        );
        assert_eq!(
            line(DhcpEvent::Nak {
                server: Ipv4Addr::UNSPECIFIED,
                message: None
            })
            .as_deref(),
            Some("net: eth0 refused by 0.0.0.0; asking again")
        );
        assert_eq!(
            line(DhcpEvent::Expired(lease(&[], 60))).as_deref(),
            Some("net: eth0 lease of 10.0.2.15/24 expired; address removed")
        );
        assert_eq!(
            line(DhcpEvent::Released(lease(&[], 60))).as_deref(),
            Some("net: eth0 released 10.0.2.15/24")
        );
        assert_eq!(
            line(DhcpEvent::LeaseFileProblem {
                problem: "cannot read the lease file /x".into()
            })
            .as_deref(),
            Some("net: eth0: cannot read the lease file /x")
        );
        assert_eq!(line(DhcpEvent::State(DhcpState::Selecting)), None);
        assert_eq!(
            line(DhcpEvent::Offered {
                server: Ipv4Addr::new(10, 0, 2, 2),
                address: Ipv4Addr::new(10, 0, 2, 15)
            }),
            None
        );
        assert_eq!(
            line(DhcpEvent::PacketIgnored {
                reason: IgnoreReason::Malformed,
                total: 1
            }),
            None
        );
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
}
