//! `mfv net`: shows the network of this host and changes it (static address, DHCP, bridge,
//! VLAN, active-backup bond) through mfv-host's network workflows, in the network namespace
//! the command runs in.
//!
//! Every change goes through `mfv_net::apply`: the kernel's state is re-read and compared
//! afterwards, and the previous state is restored when anything fails. `mfv net bridge
//! --confirm-within S` applies provisionally: the change rolls back by itself unless Enter is
//! pressed on the terminal within S seconds.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mfv_host::network::change::{
    InterfaceView, NetworkView, make_bond, make_bridge, make_bridge_provisionally, make_vlan,
    read_view, set_static,
};
use mfv_host::network::obtain_lease;
use mfv_linux::terminal_text::escape_lines;
use mfv_net::dhcp::Lease;
use mfv_net::{ApplyReport, IpCidr, Netlink, ProvisionalOutcome};

use crate::output::Output;

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
pub fn run(args: NetArgs) -> Result<Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    runtime.block_on(execute(args.command))
}

async fn execute(command: NetCommand) -> Result<Output> {
    let netlink = Netlink::connect()?;
    match command {
        NetCommand::Show { json } => {
            let view = read_view(&netlink).await?;
            Output::data(&view, json, render_table)
        }
        NetCommand::Dhcp {
            interface,
            timeout,
            resolv_conf,
        } => {
            let timeout = Duration::from_secs(timeout.into());
            let lease = obtain_lease(&netlink, &interface, timeout, resolv_conf).await?;
            Ok(Output::ok(render_lease(&interface, &lease)))
        }
        NetCommand::Static {
            interface,
            address,
            gw,
            dns,
            resolv_conf,
        } => {
            let report = set_static(&netlink, &interface, address, gw, &dns, resolv_conf).await?;
            Ok(Output::ok(render_changes(&report)))
        }
        NetCommand::Bridge {
            bridge,
            port,
            confirm_within: None,
        } => {
            let report = make_bridge(&netlink, &port, &bridge).await?;
            Ok(Output::ok(render_changes(&report)))
        }
        NetCommand::Bridge {
            bridge,
            port,
            confirm_within: Some(seconds),
        } => {
            let within = Duration::from_secs(seconds.into());
            let provisional = make_bridge_provisionally(&netlink, &port, &bridge, within).await?;
            print!("{}", escape_lines(&render_changes(provisional.report())));
            println!("press Enter within {seconds} s to keep this; otherwise it is rolled back");
            flush_stdout();
            let outcome = if enter_pressed_within(within).await {
                provisional.confirm().await
            } else {
                provisional.outcome().await
            };
            let (text, success) = render_outcome(&outcome, seconds);
            Ok(if success {
                Output::ok(format!("{text}\n"))
            } else {
                Output::failed(format!("mfv: {text}\n"))
            })
        }
        NetCommand::Bond {
            bond,
            ports,
            primary,
        } => {
            let report = make_bond(&netlink, &bond, &ports, primary.as_deref()).await?;
            Ok(Output::ok(render_changes(&report)))
        }
        NetCommand::Vlan {
            interface,
            id,
            name,
        } => {
            let report = make_vlan(&netlink, &interface, id, name.as_deref()).await?;
            Ok(Output::ok(render_changes(&report)))
        }
    }
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

/// The interface table, then the routes.
fn render_table(network: &NetworkView) -> String {
    let mut text = format!(
        "{:<15} {:<5} {:<16} {:<7} {:>5} {:<17} {:<8} {:<15} ADDRESSES\n",
        "INTERFACE", "ADMIN", "STATE", "CARRIER", "MTU", "MAC", "KIND", "MASTER"
    );
    for InterfaceView { link, addresses } in &network.interfaces {
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

#[cfg(test)]
mod tests {
    use clap::Parser;
    use mfv_net::{Link, OperState, RollbackReport, Route};

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

    fn sample_network() -> NetworkView {
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
        NetworkView {
            interfaces: vec![
                InterfaceView {
                    link: lo,
                    addresses: vec![cidr("127.0.0.1/8"), cidr("::1/128")],
                },
                InterfaceView {
                    link: link("eth0", 2, None, Some("br0")),
                    addresses: vec![],
                },
                InterfaceView {
                    link: eth1,
                    addresses: vec![],
                },
                InterfaceView {
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
        let no_routes = NetworkView {
            interfaces: vec![],
            routes: vec![],
        };
        assert!(render_table(&no_routes).ends_with("\nROUTES\nnone\n"));
    }

    #[test]
    fn the_json_has_interfaces_with_addresses_and_routes() {
        let json: serde_json::Value = serde_json::from_str(
            &Output::data(&sample_network(), true, render_table)
                .unwrap()
                .stdout,
        )
        .unwrap();
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
