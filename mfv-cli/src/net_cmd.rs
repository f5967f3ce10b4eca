//! `mfv net`: shows the network of this host and changes it (static address, DHCP, bridge,
//! VLAN, active-backup bond) through mfv-net, in the network namespace the command runs in.
//!
//! Every change goes through `mfv_net::apply`: the kernel's state is re-read and compared
//! afterwards, and the previous state is restored when anything fails. `mfv net bridge
//! --confirm-within S` applies provisionally: the change rolls back by itself unless Enter is
//! pressed on the terminal within S seconds.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use mfv_net::dhcp::{
    DhcpClient, DhcpConfig, DhcpEvent, Lease, NetlinkLeaseApplier, Timing, UdpTransport, parse_mac,
};
use mfv_net::{
    ApplyOptions, ApplyReport, DnsConfig, InterfaceConfig, InterfaceKind, IpCidr, Link, NetError,
    Netlink, NetworkState, ProvisionalOutcome, Route, apply, apply_provisional,
    check_interface_name, current_state,
};

/// Where the resolver settings go unless `--resolv-conf` says otherwise.
const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

/// `mfv net ...`.
#[derive(Debug, Args)]
pub struct NetArgs {
    #[command(subcommand)]
    command: NetCommand,
}

#[derive(Debug, Subcommand)]
enum NetCommand {
    /// Show the interfaces with their addresses, and the routes.
    Show {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Obtain a DHCP lease on an interface, configure it and exit, leaving it configured
    /// (address, default route, MTU, DNS); nothing renews it afterwards.
    Dhcp {
        /// The interface, e.g. eth0 (set up if it is down).
        interface: String,
        /// Give up when no server has answered within this many seconds.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
        timeout: u32,
        /// Write the lease's DNS servers here.
        #[arg(long, default_value = DEFAULT_RESOLV_CONF)]
        resolv_conf: PathBuf,
    },
    /// Give an interface exactly this address, and a default route through --gw (its other
    /// addresses and routes are removed); rolled back if anything fails.
    Static {
        /// The interface, e.g. eth0.
        interface: String,
        /// The address with its prefix length, e.g. 192.0.2.10/24.
        address: IpCidr,
        /// The default gateway (in the address's network).
        #[arg(long)]
        gw: Option<IpAddr>,
        /// A DNS server; repeat for more (at most 3).
        #[arg(long)]
        dns: Vec<IpAddr>,
        /// Write the DNS servers here.
        #[arg(long, default_value = DEFAULT_RESOLV_CONF)]
        resolv_conf: PathBuf,
    },
    /// Make an interface a port of a bridge (created if missing) that takes over the
    /// interface's addresses and routes, so the host keeps its address once VMs share it.
    Bridge {
        /// The bridge, e.g. br0.
        bridge: String,
        /// The interface that becomes its port.
        #[arg(long)]
        port: String,
        /// Roll the change back unless Enter is pressed within this many seconds.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3600))]
        confirm_within: Option<u32>,
    },
    /// Make interfaces the ports of an active-backup bond (created if missing) that takes over
    /// their addresses and routes; the bond checks their link every 100 ms and fails over to
    /// another port when the active one loses it.
    Bond {
        /// The bond, e.g. bond0.
        bond: String,
        /// An interface that becomes its port; repeat for more.
        #[arg(long = "port", required = true)]
        ports: Vec<String>,
        /// The port that is active whenever it has link (one of the --port interfaces).
        #[arg(long)]
        primary: Option<String>,
    },
    /// Create a VLAN sub-interface (named IFACE.ID unless --name says otherwise) and set it up.
    Vlan {
        /// The interface carrying the tagged frames.
        interface: String,
        /// The VLAN id.
        #[arg(value_parser = clap::value_parser!(u16).range(1..=4094))]
        id: u16,
        /// The sub-interface's name.
        #[arg(long)]
        name: Option<String>,
    },
}

/// Runs `mfv net ...` on a tokio runtime of its own.
pub fn run(args: NetArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    runtime.block_on(execute(args.command))
}

async fn execute(command: NetCommand) -> Result<ExitCode> {
    match command {
        NetCommand::Show { json } => {
            let netlink = connect()?;
            let shown = read_network(&netlink).await?;
            print!(
                "{}",
                if json {
                    render_json(&shown)?
                } else {
                    render_table(&shown)
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        NetCommand::Dhcp {
            interface,
            timeout,
            resolv_conf,
        } => {
            let lease = dhcp(&interface, Duration::from_secs(timeout.into()), resolv_conf).await?;
            print!("{}", render_lease(&interface, &lease));
            Ok(ExitCode::SUCCESS)
        }
        NetCommand::Static {
            interface,
            address,
            gw,
            dns,
            resolv_conf,
        } => {
            let desired = static_state(&interface, address, gw, &dns)?;
            let netlink = connect()?;
            netlink.link_by_name(&interface).await?;
            let options = ApplyOptions {
                resolv_conf: desired.dns.as_ref().map(|_| resolv_conf),
            };
            let report = apply(&netlink, &desired, &options)
                .await
                .with_context(|| format!("cannot configure {interface}"))?;
            print!("{}", render_changes(&report));
            Ok(ExitCode::SUCCESS)
        }
        NetCommand::Bridge {
            bridge,
            port,
            confirm_within,
        } => {
            check_interface_name(&bridge)?;
            let netlink = connect()?;
            netlink.link_by_name(&port).await?;
            let mut desired = current_state(&netlink, &[port.clone(), bridge.clone()])
                .await
                .with_context(|| format!("cannot read the state of {port} and {bridge}"))?;
            desired.move_to_bridge(&port, &bridge);
            let failed = || format!("cannot make {port} a port of {bridge}");
            let Some(seconds) = confirm_within else {
                let report = apply(&netlink, &desired, &ApplyOptions::default())
                    .await
                    .with_context(failed)?;
                print!("{}", render_changes(&report));
                return Ok(ExitCode::SUCCESS);
            };
            let within = Duration::from_secs(seconds.into());
            let provisional =
                apply_provisional(&netlink, &desired, &ApplyOptions::default(), within)
                    .await
                    .with_context(failed)?;
            print!("{}", render_changes(provisional.report()));
            println!("press Enter within {seconds} s to keep this; otherwise it is rolled back");
            flush_stdout();
            let outcome = if enter_pressed_within(within).await {
                provisional.confirm().await
            } else {
                provisional.outcome().await
            };
            let (text, success) = render_outcome(&outcome, seconds);
            println!("{text}");
            Ok(if success {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        NetCommand::Bond {
            bond,
            ports,
            primary,
        } => {
            check_bond_ports(&bond, &ports, primary.as_deref())?;
            let netlink = connect()?;
            for port in &ports {
                netlink.link_by_name(port).await?;
            }
            let mut involved = ports.clone();
            involved.push(bond.clone());
            let mut desired = current_state(&netlink, &involved)
                .await
                .with_context(|| format!("cannot read the state of {}", involved.join(", ")))?;
            desired.move_to_bond(&ports, &bond, primary.as_deref());
            let report = apply(&netlink, &desired, &ApplyOptions::default())
                .await
                .with_context(|| format!("cannot make {} the ports of {bond}", ports.join(", ")))?;
            print!("{}", render_changes(&report));
            Ok(ExitCode::SUCCESS)
        }
        NetCommand::Vlan {
            interface,
            id,
            name,
        } => {
            let name = name.unwrap_or_else(|| format!("{interface}.{id}"));
            check_interface_name(&name)?;
            let netlink = connect()?;
            netlink.link_by_name(&interface).await?;
            let existing = current_state(&netlink, std::slice::from_ref(&name))
                .await
                .with_context(|| format!("cannot read the state of {name}"))?;
            let desired = vlan_state(&interface, id, &name, existing);
            let report = apply(&netlink, &desired, &ApplyOptions::default())
                .await
                .with_context(|| format!("cannot create the VLAN {id} on {interface}"))?;
            print!("{}", render_changes(&report));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn connect() -> Result<Netlink> {
    Ok(Netlink::connect()?)
}

fn flush_stdout() {
    // A prompt that cannot be flushed is still printed at exit; nothing to report.
    let _ = std::io::stdout().flush();
}

/// Whether a line arrives on standard input within `within` (end of input is no).
async fn enter_pressed_within(within: Duration) -> bool {
    let (sender, receiver) = tokio::sync::oneshot::channel::<bool>();
    // A blocking read on a thread of its own: when nothing comes, the thread stays blocked
    // until the process exits, which it does right after the rollback.
    std::thread::spawn(move || {
        let mut line = String::new();
        let got_line = matches!(std::io::stdin().read_line(&mut line), Ok(length) if length > 0);
        let _ = sender.send(got_line);
    });
    matches!(tokio::time::timeout(within, receiver).await, Ok(Ok(true)))
}

/// The message and the success of a provisional apply's end.
fn render_outcome(outcome: &ProvisionalOutcome, seconds: u32) -> (String, bool) {
    match outcome {
        ProvisionalOutcome::Confirmed => ("confirmed: the change stays".to_owned(), true),
        ProvisionalOutcome::RolledBack(report) => {
            (format!("not confirmed within {seconds} s: {report}"), false)
        }
    }
}

/// Fails unless `bond` can be an interface name and `ports` are distinct interfaces other
/// than the bond that include `primary`.
fn check_bond_ports(bond: &str, ports: &[String], primary: Option<&str>) -> Result<()> {
    check_interface_name(bond)?;
    for (index, port) in ports.iter().enumerate() {
        if port == bond {
            bail!("{bond} cannot be a port of itself");
        }
        if ports[..index].contains(port) {
            bail!("--port {port} is given twice");
        }
    }
    if let Some(primary) = primary
        && !ports.iter().any(|port| port == primary)
    {
        bail!(
            "--primary {primary} is not one of the ports ({})",
            ports.join(", ")
        );
    }
    Ok(())
}

/// The state `mfv net static` applies: the interface up with exactly `address`, a default
/// route through `gateway`, and `dns` as the resolver's servers.
fn static_state(
    interface: &str,
    address: IpCidr,
    gateway: Option<IpAddr>,
    dns: &[IpAddr],
) -> Result<NetworkState> {
    if let Some(gateway) = gateway
        && !address.contains(gateway)
    {
        bail!(
            "gateway {gateway} is not in the network of {address}: the route through it would \
             not reach it from {interface}"
        );
    }
    let dns = if dns.is_empty() {
        None
    } else {
        let config = DnsConfig {
            nameservers: dns.to_vec(),
            search: Vec::new(),
            options: Vec::new(),
        };
        config.render().context("invalid --dns")?;
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
fn vlan_state(parent: &str, id: u16, name: &str, existing: NetworkState) -> NetworkState {
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

/// One line per change, or a line saying there was nothing to do.
fn render_changes(report: &ApplyReport) -> String {
    if report.changes.is_empty() {
        return "nothing to change: the network is as asked\n".to_owned();
    }
    report
        .changes
        .iter()
        .map(|change| format!("{change}\n"))
        .collect()
}

/// Obtains a lease on `interface` and leaves it configured. An interface that was down is
/// set down again when no lease comes.
async fn dhcp(interface: &str, timeout: Duration, resolv_conf: PathBuf) -> Result<Lease> {
    let netlink = connect()?;
    let link = netlink.link_by_name(interface).await?;
    let mac_text = link
        .mac
        .as_deref()
        .with_context(|| format!("{interface} has no hardware address: DHCP needs one"))?;
    let mac =
        parse_mac(mac_text).with_context(|| format!("the hardware address of {interface}"))?;
    if !link.admin_up {
        netlink.set_up(interface).await?;
    }
    let result = obtain_lease(&netlink, interface, mac, timeout, resolv_conf).await;
    if result.is_err() && !link.admin_up {
        // The lease failure is what the operator needs to see; a failed restore is added.
        if let Err(error) = netlink.set_down(interface).await {
            return result
                .with_context(|| format!("and setting {interface} down again failed: {error}"));
        }
    }
    result
}

async fn obtain_lease(
    netlink: &Netlink,
    interface: &str,
    mac: [u8; 6],
    timeout: Duration,
    resolv_conf: PathBuf,
) -> Result<Lease> {
    let mut config = DhcpConfig::new(interface, mac);
    config.release_on_shutdown = false;
    config.timing = Timing {
        first_retransmit: Duration::from_secs(1),
        acquire_timeout: Some(timeout),
        ..Timing::default()
    };
    let transport = UdpTransport::bind(interface)?;
    let applier = NetlinkLeaseApplier::new(netlink.clone(), Some(resolv_conf));
    let (events_sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let client = DhcpClient::new(config, transport, applier).with_events(events_sender);
    let task = tokio::spawn(client.run(async move {
        // A dropped sender also stops the client.
        let _ = stopped.await;
    }));
    let mut lease = None;
    while let Some(event) = events.recv().await {
        if let DhcpEvent::Bound(bound) = event {
            lease = Some(bound);
            // The client may have ended already; its result tells.
            let _ = stop.send(());
            break;
        }
    }
    task.await
        .context("the DHCP client task ended abnormally")??;
    lease.with_context(|| format!("the DHCP client on {interface} ended without a lease"))
}

/// The lease as `key  value` lines.
fn render_lease(interface: &str, lease: &Lease) -> String {
    fn list(addresses: &[std::net::Ipv4Addr]) -> String {
        if addresses.is_empty() {
            "-".to_owned()
        } else {
            addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
    let rows = [
        ("interface", interface.to_owned()),
        ("address", lease.address.to_string()),
        ("router", list(&lease.routers)),
        ("dns", list(&lease.dns_servers)),
        ("domain", lease.domain.clone().unwrap_or_else(|| "-".into())),
        (
            "mtu",
            lease.mtu.map_or_else(|| "-".into(), |mtu| mtu.to_string()),
        ),
        ("server", lease.server.to_string()),
        (
            "lease",
            format!(
                "{} s (renew after {} s, rebind after {} s)",
                lease.lease_seconds, lease.renew_seconds, lease.rebind_seconds
            ),
        ),
    ];
    let mut text = String::new();
    for (key, value) in rows {
        let _ = writeln!(text, "{key:<10} {value}");
    }
    text
}

/// One interface with its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShownLink {
    link: Link,
    addresses: Vec<IpCidr>,
}

/// What `mfv net show` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShownNetwork {
    links: Vec<ShownLink>,
    routes: Vec<Route>,
}

async fn read_network(netlink: &Netlink) -> Result<ShownNetwork> {
    let mut links = Vec::new();
    for link in netlink
        .links()
        .await
        .context("cannot list the interfaces")?
    {
        let addresses = match netlink.addresses(&link.name).await {
            Ok(addresses) => addresses,
            // Deleted since the listing: not there any more.
            Err(NetError::NoSuchInterface { .. }) => continue,
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot list the addresses of {}", link.name));
            }
        };
        links.push(ShownLink { link, addresses });
    }
    let routes = netlink.routes().await.context("cannot list the routes")?;
    Ok(ShownNetwork { links, routes })
}

/// The interface table, then the routes.
fn render_table(network: &ShownNetwork) -> String {
    let mut text = format!(
        "{:<15} {:<5} {:<16} {:<7} {:>5} {:<17} {:<8} {:<15} ADDRESSES\n",
        "INTERFACE", "ADMIN", "STATE", "CARRIER", "MTU", "MAC", "KIND", "MASTER"
    );
    for ShownLink { link, addresses } in &network.links {
        let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        let addresses = if addresses.is_empty() {
            "-".to_owned()
        } else {
            addresses.join(" ")
        };
        let _ = writeln!(
            text,
            "{:<15} {:<5} {:<16} {:<7} {:>5} {:<17} {:<8} {:<15} {addresses}",
            link.name,
            if link.admin_up { "up" } else { "down" },
            link.state,
            if link.carrier { "yes" } else { "no" },
            link.mtu,
            link.mac.as_deref().unwrap_or("-"),
            link.kind.as_deref().unwrap_or("-"),
            link.master.as_deref().unwrap_or("-"),
        );
    }
    text.push_str("\nROUTES\n");
    if network.routes.is_empty() {
        text.push_str("none\n");
    }
    for route in &network.routes {
        let _ = writeln!(text, "{route}");
    }
    text
}

/// `{"interfaces": [LINK + "addresses"], "routes": [ROUTE]}`, pretty-printed.
fn render_json(network: &ShownNetwork) -> Result<String> {
    let mut interfaces = Vec::new();
    for ShownLink { link, addresses } in &network.links {
        let mut value = serde_json::to_value(link).context("interface as JSON")?;
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "addresses".into(),
                serde_json::to_value(addresses).context("addresses as JSON")?,
            );
        }
        interfaces.push(value);
    }
    let document = serde_json::json!({
        "interfaces": interfaces,
        "routes": serde_json::to_value(&network.routes).context("routes as JSON")?,
    });
    let mut text = serde_json::to_string_pretty(&document).context("network as JSON")?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use mfv_net::{OperState, RollbackReport};

    use super::*;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: NetCommand,
    }

    fn parse(args: &[&str]) -> Result<NetCommand, clap::Error> {
        TestCli::try_parse_from([&["net"], args].concat()).map(|cli| cli.command)
    }

    fn cidr(text: &str) -> IpCidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn static_takes_the_address_gateway_and_repeated_dns() {
        let command = parse(&[
            "static",
            "eth0",
            "192.0.2.10/24",
            "--gw",
            "192.0.2.1",
            "--dns",
            "192.0.2.53",
            "--dns",
            "192.0.2.54",
        ])
        .unwrap();
        let NetCommand::Static {
            interface,
            address,
            gw,
            dns,
            resolv_conf,
        } = command
        else {
            panic!("parsed as {command:?}");
        };
        assert_eq!(interface, "eth0");
        assert_eq!(address, cidr("192.0.2.10/24"));
        assert_eq!(gw, Some(ip("192.0.2.1")));
        assert_eq!(dns, [ip("192.0.2.53"), ip("192.0.2.54")]);
        assert_eq!(resolv_conf, PathBuf::from("/etc/resolv.conf"));
    }

    #[test]
    fn a_malformed_cidr_is_a_usage_error_naming_the_input() {
        for (input, problem) in [
            ("192.0.2.10/33", "prefix length 33 is out of range 0..=32"),
            ("192.0.2.10", "192.0.2.10"),
            ("192.0.2.300/24", "192.0.2.300"),
        ] {
            let error = parse(&["static", "eth0", input]).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
            let message = error.to_string();
            assert!(message.contains(input), "{message}");
            assert!(message.contains(problem), "{message}");
        }
    }

    #[test]
    fn vlan_ids_outside_1_to_4094_are_refused() {
        for id in ["0", "4095", "x"] {
            assert!(parse(&["vlan", "eth0", id]).is_err(), "{id}");
        }
        let command = parse(&["vlan", "eth0", "7"]).unwrap();
        assert!(matches!(
            command,
            NetCommand::Vlan {
                id: 7,
                name: None,
                ..
            }
        ));
    }

    #[test]
    fn dhcp_timeout_defaults_to_30_and_rejects_zero() {
        let command = parse(&["dhcp", "eth0"]).unwrap();
        assert!(matches!(command, NetCommand::Dhcp { timeout: 30, .. }));
        assert!(parse(&["dhcp", "eth0", "--timeout", "0"]).is_err());
    }

    #[test]
    fn bridge_needs_a_port_and_takes_a_confirmation_time() {
        assert!(parse(&["bridge", "br0"]).is_err());
        let command =
            parse(&["bridge", "br0", "--port", "eth0", "--confirm-within", "30"]).unwrap();
        let NetCommand::Bridge {
            bridge,
            port,
            confirm_within,
        } = command
        else {
            panic!("parsed as {command:?}");
        };
        assert_eq!((bridge.as_str(), port.as_str()), ("br0", "eth0"));
        assert_eq!(confirm_within, Some(30));
        assert!(parse(&["bridge", "br0", "--port", "eth0", "--confirm-within", "0"]).is_err());
    }

    #[test]
    fn bond_needs_a_port_and_takes_several_and_a_primary() {
        assert!(parse(&["bond", "bond0"]).is_err());
        let command = parse(&[
            "bond",
            "bond0",
            "--port",
            "eth0",
            "--port",
            "eth1",
            "--primary",
            "eth1",
        ])
        .unwrap();
        let NetCommand::Bond {
            bond,
            ports,
            primary,
        } = command
        else {
            panic!("parsed as {command:?}");
        };
        assert_eq!(bond, "bond0");
        assert_eq!(ports, ["eth0", "eth1"]);
        assert_eq!(primary.as_deref(), Some("eth1"));
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
                "--primary eth2 is not one of the ports (eth0, eth1)",
            ),
            (
                "bond0",
                &["eth0", "eth0"],
                None,
                "--port eth0 is given twice",
            ),
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
        let message = format!("{error:#}");
        assert!(message.starts_with("invalid --dns: "), "{message}");
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

    #[test]
    fn changes_render_one_per_line() {
        let report = ApplyReport {
            changes: vec!["create bridge br0".into(), "set br0 up".into()],
        };
        assert_eq!(render_changes(&report), "create bridge br0\nset br0 up\n");
        assert_eq!(
            render_changes(&ApplyReport::default()),
            "nothing to change: the network is as asked\n"
        );
    }

    #[test]
    fn provisional_outcomes_render() {
        assert_eq!(
            render_outcome(&ProvisionalOutcome::Confirmed, 30),
            ("confirmed: the change stays".to_owned(), true)
        );
        assert_eq!(
            render_outcome(
                &ProvisionalOutcome::RolledBack(RollbackReport::default()),
                30
            ),
            (
                "not confirmed within 30 s: the previous state was restored".to_owned(),
                false
            )
        );
        let failed = RollbackReport {
            failures: vec!["delete br0: busy".into()],
        };
        assert_eq!(
            render_outcome(&ProvisionalOutcome::RolledBack(failed), 5).0,
            "not confirmed within 5 s: restoring the previous state failed: delete br0: busy"
        );
    }

    fn sample_network() -> ShownNetwork {
        let link = |name: &str, index: u32, kind: Option<&str>, master: Option<&str>| Link {
            name: name.into(),
            index,
            mac: Some(format!("02:00:00:00:00:0{index}")),
            mtu: 1500,
            admin_up: true,
            state: OperState::Up,
            carrier: true,
            kind: kind.map(Into::into),
            master: master.map(Into::into),
        };
        let mut lo = link("lo", 1, None, None);
        lo.mac = None;
        lo.mtu = 65536;
        lo.state = OperState::Unknown;
        let mut eth1 = link("eth1", 3, None, None);
        eth1.admin_up = false;
        eth1.carrier = false;
        eth1.state = OperState::Down;
        ShownNetwork {
            links: vec![
                ShownLink {
                    link: lo,
                    addresses: vec![cidr("127.0.0.1/8"), cidr("::1/128")],
                },
                ShownLink {
                    link: link("eth0", 2, None, Some("br0")),
                    addresses: vec![],
                },
                ShownLink {
                    link: eth1,
                    addresses: vec![],
                },
                ShownLink {
                    link: link("br0", 4, Some("bridge"), None),
                    addresses: vec![cidr("192.0.2.10/24")],
                },
            ],
            routes: vec![Route::default_via(ip("192.0.2.1"), "br0")],
        }
    }

    #[test]
    fn the_table_lists_interfaces_then_routes() {
        assert_eq!(
            render_table(&sample_network()),
            "INTERFACE       ADMIN STATE            CARRIER   MTU MAC               KIND     MASTER          ADDRESSES\n\
             lo              up    unknown          yes     65536 -                 -        -               127.0.0.1/8 ::1/128\n\
             eth0            up    up               yes      1500 02:00:00:00:00:02 -        br0             -\n\
             eth1            down  down             no       1500 02:00:00:00:00:03 -        -               -\n\
             br0             up    up               yes      1500 02:00:00:00:00:04 bridge   -               192.0.2.10/24\n\
             \n\
             ROUTES\n\
             default via 192.0.2.1 dev br0\n"
        );
        let no_routes = ShownNetwork {
            links: vec![],
            routes: vec![],
        };
        assert!(render_table(&no_routes).ends_with("\nROUTES\nnone\n"));
    }

    #[test]
    fn the_json_has_interfaces_with_addresses_and_routes() {
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&sample_network()).unwrap()).unwrap();
        let interfaces = json["interfaces"].as_array().unwrap();
        assert_eq!(interfaces.len(), 4);
        assert_eq!(interfaces[0]["name"], "lo");
        assert_eq!(
            interfaces[0]["addresses"],
            serde_json::json!(["127.0.0.1/8", "::1/128"])
        );
        assert_eq!(interfaces[1]["master"], "br0");
        assert_eq!(interfaces[3]["kind"], "bridge");
        assert_eq!(interfaces[3]["state"], "up");
        assert_eq!(
            json["routes"],
            serde_json::json!([{
                "destination": "0.0.0.0/0",
                "gateway": "192.0.2.1",
                "interface": "br0",
                "metric": null
            }])
        );
    }

    #[test]
    fn a_lease_renders_as_key_value_lines() {
        let lease = Lease {
            address: "10.0.2.15/24".parse().unwrap(),
            server: "10.0.2.2".parse().unwrap(),
            routers: vec!["10.0.2.2".parse().unwrap()],
            dns_servers: vec!["10.0.2.3".parse().unwrap()],
            domain: None,
            mtu: None,
            lease_seconds: 86400,
            renew_seconds: 43200,
            rebind_seconds: 75600,
        };
        assert_eq!(
            render_lease("eth0", &lease),
            "interface  eth0\n\
             address    10.0.2.15/24\n\
             router     10.0.2.2\n\
             dns        10.0.2.3\n\
             domain     -\n\
             mtu        -\n\
             server     10.0.2.2\n\
             lease      86400 s (renew after 43200 s, rebind after 75600 s)\n"
        );
    }
}
