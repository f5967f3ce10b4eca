//! `mfv net`: shows the network of this host and changes it (static address, DHCP, bridge,
//! VLAN, active-backup bond) through mfv-host's network workflows, in the network namespace
//! the command runs in; `mfv net apply` and `mfv net confirm` change the running host's
//! network through the host daemon instead, which hands the change to PID 1.
//!
//! Every change goes through `mfv_net::apply`: the kernel's state is re-read and compared
//! afterwards, and the previous state is restored when anything fails. `mfv net bridge
//! --confirm-within S` applies provisionally: the change rolls back by itself unless Enter is
//! pressed on the terminal within S seconds.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use mfv_api::{
    Client, ClientError, ConfigIssue, DEFAULT_CLIENT_NAME, ErrorKind, MAX_CONFIRM_SECS,
    NetworkOutcome, ProvisionalChange, apply_network,
};
use mfv_host::network::change::{
    InterfaceView, NetworkView, make_bond, make_bridge, make_bridge_provisionally, make_vlan,
    read_view, set_static,
};
use mfv_host::network::obtain_lease;
use mfv_linux::terminal_text::escape_lines;
use mfv_linux::utc::UtcTime;
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
    #[command(flatten)]
    Local(LocalCommand),
    /// Apply a `[network]` section (a TOML file, as in mfv.toml) to the running host through
    /// the host daemon, provisionally: the host rolls it back unless it is confirmed in time,
    /// over a new connection (Enter here, --yes, or `mfv net confirm ID`). The configuration
    /// on the config volume is not changed.
    Apply {
        /// The file with the `[network]` section.
        file: PathBuf,
        /// Seconds the host waits for the confirmation.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONFIRM_SECS)))]
        confirm_within: u32,
        /// Confirm at once, as soon as the host answers on a new connection.
        #[arg(long)]
        yes: bool,
        /// The host daemon's socket.
        #[arg(long, default_value = mfv_api::DEFAULT_SOCKET_PATH)]
        socket: PathBuf,
    },
    /// Keep a change `mfv net apply` made, before its deadline.
    Confirm {
        /// The change's id, as `mfv net apply` printed it.
        apply_id: u64,
        /// The host daemon's socket.
        #[arg(long, default_value = mfv_api::DEFAULT_SOCKET_PATH)]
        socket: PathBuf,
    },
}

/// What `mfv net` does itself, over netlink.
#[derive(Debug, Subcommand)]
enum LocalCommand {
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

/// Runs `mfv net ...`: the local commands on a tokio runtime of their own.
pub fn run(args: NetArgs) -> Result<Output> {
    match args.command {
        NetCommand::Local(command) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start a tokio runtime")?;
            runtime.block_on(execute(command))
        }
        NetCommand::Apply {
            file,
            confirm_within,
            yes,
            socket,
        } => apply_on_host(&socket, &file, confirm_within, yes),
        NetCommand::Confirm { apply_id, socket } => {
            let outcome = connect(&socket)?.network_confirm(apply_id)?;
            Ok(render_host_outcome(&outcome, Decision::Keep))
        }
    }
}

async fn execute(command: LocalCommand) -> Result<Output> {
    let netlink = Netlink::connect()?;
    match command {
        LocalCommand::Show { json } => {
            let view = read_view(&netlink).await?;
            Output::data(&view, json, render_table)
        }
        LocalCommand::Dhcp {
            interface,
            timeout,
            resolv_conf,
        } => {
            let timeout = Duration::from_secs(timeout.into());
            let lease = obtain_lease(&netlink, &interface, timeout, resolv_conf).await?;
            Ok(Output::ok(render_lease(&interface, &lease)))
        }
        LocalCommand::Static {
            interface,
            address,
            gw,
            dns,
            resolv_conf,
        } => {
            let report = set_static(&netlink, &interface, address, gw, &dns, resolv_conf).await?;
            Ok(Output::ok(render_changes(&report)))
        }
        LocalCommand::Bridge {
            bridge,
            port,
            confirm_within: None,
        } => {
            let report = make_bridge(&netlink, &port, &bridge).await?;
            Ok(Output::ok(render_changes(&report)))
        }
        LocalCommand::Bridge {
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
        LocalCommand::Bond {
            bond,
            ports,
            primary,
        } => {
            let report = make_bond(&netlink, &bond, &ports, primary.as_deref()).await?;
            Ok(Output::ok(render_changes(&report)))
        }
        LocalCommand::Vlan {
            interface,
            id,
            name,
        } => {
            let report = make_vlan(&netlink, &interface, id, name.as_deref()).await?;
            Ok(Output::ok(render_changes(&report)))
        }
    }
}

/// How the operator decided about a change applied on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Keep it: confirmed over a new connection.
    Keep,
    /// Nothing more comes from standard input: it waits for `mfv net confirm`.
    Later,
    /// Nothing came in time: the host rolls it back.
    TimedOut,
}

/// A client of the host daemon on `socket`, or why there is none.
fn connect(socket: &Path) -> Result<Client> {
    Client::connect(socket).with_context(|| no_daemon(socket))
}

fn no_daemon(socket: &Path) -> String {
    format!(
        "the host daemon does not answer on {} (is this a Minifed-Virt host, and are you root?)",
        socket.display()
    )
}

/// `mfv net apply`: sends `file` to the host daemon, shows what changed and the deadline,
/// and confirms over a new connection when told to.
fn apply_on_host(socket: &Path, file: &Path, confirm_within: u32, yes: bool) -> Result<Output> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut decision = Decision::Keep;
    let applied = apply_network(
        socket,
        DEFAULT_CLIENT_NAME,
        &text,
        confirm_within,
        |change| {
            let deadline =
                SystemTime::now() + Duration::from_secs(change.confirm_within_secs.into());
            print!("{}", escape_lines(&render_applied(change, deadline, yes)));
            flush_stdout();
            if !yes {
                decision = line_within(Duration::from_secs(change.confirm_within_secs.into()));
            }
            decision == Decision::Keep
        },
    );
    match applied {
        Ok(outcome) => Ok(render_host_outcome(&outcome, decision)),
        Err(error) => match error.api_error() {
            Some(api) if api.kind == ErrorKind::InvalidConfig => {
                Ok(Output::failed(render_issues(file, &api.config_errors)))
            }
            _ if matches!(error, ClientError::Connect { .. }) => {
                Err(anyhow::Error::new(error).context(no_daemon(socket)))
            }
            _ => {
                Err(anyhow::Error::new(error).context(format!("mfv net apply {}", file.display())))
            }
        },
    }
}

/// Whether a line arrives on standard input within `within`.
fn line_within(within: Duration) -> Decision {
    let (sender, receiver) = std::sync::mpsc::channel();
    // A blocking read on a thread of its own: when nothing comes, the thread stays blocked
    // until the process exits, right after.
    std::thread::spawn(move || {
        let mut line = String::new();
        let got_line = matches!(std::io::stdin().read_line(&mut line), Ok(length) if length > 0);
        let _ = sender.send(got_line);
    });
    match receiver.recv_timeout(within) {
        Ok(true) => Decision::Keep,
        Ok(false) => Decision::Later,
        Err(_) => Decision::TimedOut,
    }
}

/// What was changed, the id and the deadline, and what to do.
fn render_applied(change: &ProvisionalChange, deadline: SystemTime, yes: bool) -> String {
    let mut text = String::new();
    for line in &change.changes {
        let _ = writeln!(text, "{line}");
    }
    if change.changes.is_empty() {
        text.push_str("nothing to change: the network is as asked\n");
    }
    let _ = writeln!(
        text,
        "change {} applied provisionally: the host rolls it back at {} unless confirmed \
         within {} s",
        change.apply_id,
        utc_clock(deadline),
        change.confirm_within_secs
    );
    if !yes {
        let _ = writeln!(
            text,
            "press Enter to keep it (or run `mfv net confirm {}` from a new session)",
            change.apply_id
        );
    }
    text
}

/// How a change on the host ended, after `decision`.
fn render_host_outcome(outcome: &NetworkOutcome, decision: Decision) -> Output {
    match (outcome, decision) {
        (NetworkOutcome::Confirmed, _) => Output::ok(
            "confirmed: the host keeps the change (until it reboots, unless the configuration \
             says the same)\n",
        ),
        (NetworkOutcome::RolledBack { reason }, _) => {
            Output::failed(format!("mfv: the previous network is back: {reason}\n"))
        }
        (NetworkOutcome::Applied { apply_id, .. }, Decision::TimedOut) => Output::failed(format!(
            "mfv: change {apply_id} was not confirmed in time: the host rolls it back\n"
        )),
        (NetworkOutcome::Applied { apply_id, .. }, _) => Output::ok(format!(
            "change {apply_id} waits for `mfv net confirm {apply_id}`\n"
        )),
        (other, _) => Output::failed(format!("mfv: the host answered {other:?}\n")),
    }
}

/// Every problem of the section in `file`, as `FILE:LINE:COL: FIELD: MESSAGE` lines.
fn render_issues(file: &Path, issues: &[ConfigIssue]) -> String {
    let mut text = format!(
        "mfv: {} is not a network section the host accepts:\n",
        file.display()
    );
    for issue in issues {
        let _ = write!(text, "{}:", file.display());
        if let (Some(line), Some(column)) = (issue.line, issue.column) {
            let _ = write!(text, "{line}:{column}:");
        }
        if !issue.field.is_empty() {
            let _ = write!(text, " {}:", issue.field);
        }
        let _ = writeln!(text, " {}", issue.message);
    }
    text
}

/// `HH:MM:SS UTC` of `time`.
fn utc_clock(time: SystemTime) -> String {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        });
    let time = UtcTime::from_unix_seconds(seconds);
    format!("{:02}:{:02}:{:02} UTC", time.hour, time.minute, time.second)
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
    use std::os::unix::net::UnixListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use clap::Parser;
    use mfv_api::{ApiError, Request, Response, serve_requests, server_handshake};

    use crate::output::Status;
    use mfv_net::{Link, OperState, RollbackReport, Route};

    use super::*;

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: NetCommand,
    }

    fn parse_any(args: &[&str]) -> Result<NetCommand, clap::Error> {
        TestCli::try_parse_from([&["net"], args].concat()).map(|cli| cli.command)
    }

    /// A command `mfv net` carries out itself.
    fn parse(args: &[&str]) -> Result<LocalCommand, clap::Error> {
        parse_any(args).map(|command| match command {
            NetCommand::Local(command) => command,
            other => panic!("not a local command: {other:?}"),
        })
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
        let LocalCommand::Static {
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
            LocalCommand::Vlan {
                id: 7,
                name: None,
                ..
            }
        ));
    }

    #[test]
    fn dhcp_timeout_defaults_to_30_and_rejects_zero() {
        let command = parse(&["dhcp", "eth0"]).unwrap();
        assert!(matches!(command, LocalCommand::Dhcp { timeout: 30, .. }));
        assert!(parse(&["dhcp", "eth0", "--timeout", "0"]).is_err());
    }

    #[test]
    fn bridge_needs_a_port_and_takes_a_confirmation_time() {
        assert!(parse(&["bridge", "br0"]).is_err());
        let command =
            parse(&["bridge", "br0", "--port", "eth0", "--confirm-within", "30"]).unwrap();
        let LocalCommand::Bridge {
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
        let LocalCommand::Bond {
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
    fn apply_takes_a_file_a_deadline_from_1_to_600_and_yes() {
        let NetCommand::Apply {
            file,
            confirm_within,
            yes,
            socket,
        } = parse_any(&["apply", "net.toml"]).unwrap()
        else {
            panic!("not apply");
        };
        assert_eq!(
            (file, confirm_within, yes, socket),
            (
                PathBuf::from("net.toml"),
                60,
                false,
                PathBuf::from(mfv_api::DEFAULT_SOCKET_PATH)
            )
        );
        let command = parse_any(&["apply", "n.toml", "--confirm-within", "600", "--yes"]).unwrap();
        assert!(matches!(
            command,
            NetCommand::Apply {
                confirm_within: 600,
                yes: true,
                ..
            }
        ));
        for bad in ["0", "601"] {
            let error = parse_any(&["apply", "n.toml", "--confirm-within", bad]).unwrap_err();
            assert!(error.to_string().contains("--confirm-within"), "{error}");
        }
        let error = parse_any(&["confirm", "first"]).unwrap_err();
        assert!(error.to_string().contains("'first'"), "{error}");
        assert!(matches!(
            parse_any(&["confirm", "7"]).unwrap(),
            NetCommand::Confirm { apply_id: 7, .. }
        ));
    }

    #[test]
    fn an_applied_change_shows_what_changed_and_the_deadline() {
        let change = ProvisionalChange {
            apply_id: 3,
            confirm_within_secs: 30,
            changes: vec![
                "eth0: DHCP client stopped".into(),
                "add 192.0.2.10/24 to eth0".into(),
            ],
        };
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 2 + 3_723);
        assert_eq!(
            render_applied(&change, deadline, false),
            "eth0: DHCP client stopped\nadd 192.0.2.10/24 to eth0\n\
             change 3 applied provisionally: the host rolls it back at 01:02:03 UTC unless \
             confirmed within 30 s\n\
             press Enter to keep it (or run `mfv net confirm 3` from a new session)\n"
        );
        assert!(!render_applied(&change, deadline, true).contains("press Enter"));
    }

    #[test]
    fn outcomes_on_the_host_render_with_their_status() {
        let applied = NetworkOutcome::Applied {
            apply_id: 4,
            confirm_within_secs: 30,
            changes: Vec::new(),
        };
        let later = render_host_outcome(&applied, Decision::Later);
        assert_eq!(
            (later.stdout.as_str(), later.status),
            ("change 4 waits for `mfv net confirm 4`\n", Status::Success)
        );
        let late = render_host_outcome(&applied, Decision::TimedOut);
        assert_eq!(late.status, Status::Failure);
        assert!(late.stderr.contains("change 4 was not confirmed in time"));
        let kept = render_host_outcome(&NetworkOutcome::Confirmed, Decision::Keep);
        assert!(
            kept.stdout
                .starts_with("confirmed: the host keeps the change")
        );
        let back = render_host_outcome(
            &NetworkOutcome::RolledBack {
                reason: "not confirmed within 30 s".into(),
            },
            Decision::Keep,
        );
        assert_eq!(
            (back.stderr.as_str(), back.status),
            (
                "mfv: the previous network is back: not confirmed within 30 s\n",
                Status::Failure
            )
        );
    }

    /// A host daemon answering every connection in a thread of its own with `answer`; the
    /// connections it served are counted.
    fn daemon(
        answer: fn(Request) -> Result<Response, ApiError>,
    ) -> (tempfile::TempDir, PathBuf, Arc<AtomicUsize>) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("host.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    server_handshake(&mut stream, "test daemon").unwrap();
                    let _ = serve_requests(&mut stream, &mut |request| answer(request));
                });
            }
        });
        (dir, socket, connections)
    }

    fn host(request: Request) -> Result<Response, ApiError> {
        match request {
            Request::NetworkApply {
                network_toml,
                confirm_within_secs,
            } if network_toml.contains("eth0") => Ok(Response::Network(NetworkOutcome::Applied {
                apply_id: 1,
                confirm_within_secs,
                changes: vec!["add 192.0.2.10/24 to eth0".into()],
            })),
            Request::NetworkApply { .. } => {
                let mut issue = ConfigIssue::new(
                    "network.interfaces[0].name",
                    "\"\" is not an interface name",
                );
                issue.line = Some(2);
                issue.column = Some(8);
                Err(ApiError::invalid_config(
                    "the network section has 1 problem(s)",
                    vec![issue],
                ))
            }
            Request::NetworkConfirm { apply_id: 1 } => {
                Ok(Response::Network(NetworkOutcome::Confirmed))
            }
            other => Err(ApiError::new(ErrorKind::NotFound, other.name())),
        }
    }

    #[test]
    fn apply_with_yes_confirms_over_a_new_connection() {
        let (dir, socket, connections) = daemon(host);
        let file = dir.path().join("net.toml");
        std::fs::write(&file, "[[network.interfaces]]\nname = \"eth0\"\n").unwrap();
        let output = apply_on_host(&socket, &file, 30, true).unwrap();
        assert_eq!(output.status, Status::Success, "{output:?}");
        assert!(output.stdout.starts_with("confirmed: "), "{output:?}");
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn apply_names_the_file_and_its_problems_or_why_it_was_not_read() {
        let (dir, socket, connections) = daemon(host);
        let file = dir.path().join("net.toml");
        std::fs::write(&file, "[[network.interfaces]]\nname = \"\"\n").unwrap();
        let output = apply_on_host(&socket, &file, 30, true).unwrap();
        assert_eq!(output.status, Status::Failure);
        let name = file.display();
        assert_eq!(
            output.stderr,
            format!(
                "mfv: {name} is not a network section the host accepts:\n\
                 {name}:2:8: network.interfaces[0].name: \"\" is not an interface name\n"
            )
        );
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        let missing = dir.path().join("missing.toml");
        let error = apply_on_host(&socket, &missing, 30, true).unwrap_err();
        assert_eq!(
            format!("{error:#}").split(':').next().unwrap(),
            format!("cannot read {}", missing.display())
        );
        let error = apply_on_host(&dir.path().join("none.sock"), &file, 30, true).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the host daemon does not answer on "),
            "{error:#}"
        );
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
