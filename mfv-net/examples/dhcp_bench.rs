//! Benchmark: time from DHCP client start to address configured, for this crate's client,
//! busybox udhcpc and ISC dhclient, against one dnsmasq across a veth pair between two
//! throwaway network namespaces. Needs root, `ip`, `dnsmasq`, `busybox` and `dhclient`
//! (a missing reference client is reported and skipped).
//!
//! Every client runs as a fresh process started with `ip netns exec`, and the time is taken
//! from spawning it to its exit: `udhcpc -q` and this example's `--oneshot` mode exit once
//! the address is configured; `dhclient -1` forks into the background at that point and the
//! foreground process exits. Each client does a full DISCOVER/OFFER/REQUEST/ACK (no lease
//! file), its address is flushed between runs, and the figure is the median of 10 runs after
//! one warm-up run.
//!
//! ```text
//! cargo run --release -p mfv-net --example dhcp_bench [-- --runs N]
//! ```

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use mfv_net::Netlink;
use mfv_net::dhcp::{
    DhcpClient, DhcpConfig, DhcpEvent, NetlinkLeaseApplier, UdpTransport, parse_mac,
};

/// Server side of the veth pair.
const SERVER_IF: &str = "bsrv0";
/// Client side of the veth pair.
const CLIENT_IF: &str = "bcl0";

/// A shell script for udhcpc and dhclient that configures the address as their stock
/// scripts would (address and default route), without touching /etc/resolv.conf.
const CONFIGURE_SCRIPT: &str = r#"#!/bin/sh
case "$1$reason" in
  bound|renew) ip addr add "$ip/$mask" dev "$interface"
      [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface" ;;
  BOUND|RENEW|REBOOT) ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
      [ -n "$new_routers" ] && ip route replace default via "${new_routers%% *}" dev "$interface" ;;
esac
exit 0
"#;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("--oneshot") {
        oneshot(args.get(2).map_or(CLIENT_IF, String::as_str))
    } else {
        let runs = match args.iter().position(|arg| arg == "--runs") {
            Some(index) => args
                .get(index + 1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(10),
            None => 10,
        };
        bench(runs)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dhcp_bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--oneshot IF`: obtains a lease on IF, configures it, and exits leaving it configured.
fn oneshot(interface: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start tokio: {error}"))?;
    runtime.block_on(async {
        let netlink = Netlink::connect().map_err(|error| error.to_string())?;
        let link = netlink
            .link_by_name(interface)
            .await
            .map_err(|error| error.to_string())?;
        let mac = parse_mac(link.mac.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
        let mut config = DhcpConfig::new(interface, mac);
        config.release_on_shutdown = false;
        let transport = UdpTransport::bind(interface).map_err(|error| error.to_string())?;
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let client = DhcpClient::new(config, transport, NetlinkLeaseApplier::new(netlink, None))
            .with_events(events_tx);
        let task = tokio::spawn(client.run(async move {
            let _ = stopped.await;
        }));
        while let Some(event) = events.recv().await {
            if matches!(event, DhcpEvent::Bound(_)) {
                let _ = stop.send(());
                break;
            }
        }
        match task.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(error) => Err(error.to_string()),
        }
    })
}

/// Two namespaces joined by a veth pair, deleted on drop.
struct Namespaces {
    server: String,
    client: String,
}

impl Namespaces {
    fn new() -> Result<Namespaces, String> {
        let pid = std::process::id();
        let namespaces = Namespaces {
            server: format!("mfvb-{pid}-s"),
            client: format!("mfvb-{pid}-c"),
        };
        run("ip", &["netns", "add", &namespaces.server])?;
        run("ip", &["netns", "add", &namespaces.client])?;
        let (s, c) = (namespaces.server.as_str(), namespaces.client.as_str());
        run(
            "ip",
            &[
                "-n", s, "link", "add", SERVER_IF, "type", "veth", "peer", "name", CLIENT_IF,
                "netns", c,
            ],
        )?;
        run(
            "ip",
            &["-n", s, "addr", "add", "192.0.2.1/24", "dev", SERVER_IF],
        )?;
        run("ip", &["-n", s, "link", "set", SERVER_IF, "up"])?;
        run("ip", &["-n", c, "link", "set", CLIENT_IF, "up"])?;
        run("ip", &["-n", c, "link", "set", "lo", "up"])?;
        Ok(namespaces)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in [&self.server, &self.client] {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// Runs a command to completion; fails with its stderr.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Whether `program` is on the PATH.
fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Spawns `ip netns exec NAMESPACE ARGS...` and times it until it exits successfully.
fn time_process(namespace: &str, args: &[&str]) -> Result<Duration, String> {
    let started = Instant::now();
    let status = Command::new("ip")
        .args(["netns", "exec", namespace])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|error| format!("cannot run {}: {error}", args.join(" ")))?;
    let elapsed = started.elapsed();
    if !status.success() {
        return Err(format!("{} exited with {status}", args.join(" ")));
    }
    Ok(elapsed)
}

/// One benchmarked client: a name and how to run it once.
struct Contender<'a> {
    name: &'static str,
    run_once: Box<dyn FnMut() -> Result<Duration, String> + 'a>,
}

fn bench(runs: usize) -> Result<(), String> {
    let namespaces = Namespaces::new()?;
    let dir = tempfile::tempdir().map_err(|error| format!("cannot create a temp dir: {error}"))?;
    let script = dir.path().join("configure.sh");
    std::fs::write(&script, CONFIGURE_SCRIPT).map_err(|error| error.to_string())?;
    run("chmod", &["755", &script.to_string_lossy()])?;
    let mut dnsmasq = start_dnsmasq(&namespaces.server, dir.path())?;
    let result = bench_clients(runs, &namespaces, dir.path(), &script);
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
    result
}

fn start_dnsmasq(namespace: &str, dir: &Path) -> Result<std::process::Child, String> {
    let child = Command::new("ip")
        .args(["netns", "exec", namespace, "dnsmasq"])
        .args([
            "--no-ping",
            "--conf-file=/dev/null",
            "--port=0",
            "--bind-interfaces",
            "--no-daemon",
            "--user=root",
            "--dhcp-range=192.0.2.50,192.0.2.150,255.255.255.0,1h",
            "--dhcp-option=option:router,192.0.2.1",
        ])
        .arg(format!("--interface={SERVER_IF}"))
        .arg(format!(
            "--dhcp-leasefile={}",
            dir.join("dnsmasq.leases").display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot start dnsmasq: {error}"))?;
    // Ready once it has port 67 open in its namespace.
    let table = format!("/proc/{}/net/udp", child.id());
    let started = Instant::now();
    while !std::fs::read_to_string(&table)
        .unwrap_or_default()
        .lines()
        .any(|line| line.contains(":0043 "))
    {
        if started.elapsed() > Duration::from_secs(5) {
            return Err("dnsmasq did not open port 67 within 5 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(child)
}

fn bench_clients(
    runs: usize,
    namespaces: &Namespaces,
    dir: &Path,
    script: &Path,
) -> Result<(), String> {
    let client = namespaces.client.as_str();
    let script = script.to_string_lossy().into_owned();
    let this = std::env::current_exe().map_err(|error| error.to_string())?;
    let this = this.to_string_lossy().into_owned();
    let mut contenders = vec![Contender {
        name: "mfv-net",
        run_once: Box::new(|| time_process(client, &[&this, "--oneshot", CLIENT_IF])),
    }];
    if installed("busybox") {
        let script = &script;
        contenders.push(Contender {
            name: "busybox udhcpc",
            run_once: Box::new(move || {
                time_process(
                    client,
                    &[
                        "busybox", "udhcpc", "-f", "-q", "-n", "-i", CLIENT_IF, "-s", script,
                    ],
                )
            }),
        });
    } else {
        println!("busybox udhcpc: not installed (apt-get install busybox-static), skipped");
    }
    if installed("dhclient") {
        let pid_file = dir.join("dhclient.pid").to_string_lossy().into_owned();
        let script = &script;
        let mut run_number = 0;
        contenders.push(Contender {
            name: "dhclient",
            run_once: Box::new(move || {
                run_number += 1;
                let lease_file = dir
                    .join(format!("dhclient-{run_number}.leases"))
                    .to_string_lossy()
                    .into_owned();
                let elapsed = time_process(
                    client,
                    &[
                        "dhclient",
                        "-1",
                        "-pf",
                        &pid_file,
                        "-lf",
                        &lease_file,
                        "-sf",
                        script,
                        CLIENT_IF,
                    ],
                );
                // The daemonized dhclient keeps running: stop it by its pid file.
                if let Ok(pid) = std::fs::read_to_string(&pid_file) {
                    let _ = run("kill", &[pid.trim()]);
                    let _ = std::fs::remove_file(&pid_file);
                }
                elapsed
            }),
        });
    } else {
        println!("dhclient: not installed (apt-get install isc-dhcp-client), skipped");
    }

    println!("dhcp: start to address configured, median of {runs} runs (min..max)");
    for contender in &mut contenders {
        let mut times = Vec::with_capacity(runs);
        for run_index in 0..=runs {
            run(
                "ip",
                &[
                    "-n", client, "addr", "flush", "dev", CLIENT_IF, "scope", "global",
                ],
            )?;
            let elapsed = (contender.run_once)()?;
            if run_index > 0 {
                times.push(elapsed);
            }
        }
        run(
            "ip",
            &[
                "-n", client, "addr", "flush", "dev", CLIENT_IF, "scope", "global",
            ],
        )?;
        times.sort();
        let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
        println!(
            "  {:<16} {:>8.1} ms  ({:.1}..{:.1})",
            contender.name,
            ms(median(&times)),
            ms(times[0]),
            ms(times[times.len() - 1]),
        );
    }
    Ok(())
}

/// The median of sorted `times`: the middle one, or the mean of the two middle ones.
fn median(times: &[Duration]) -> Duration {
    let middle = times.len() / 2;
    if times.len() % 2 == 0 {
        (times[middle - 1] + times[middle]) / 2
    } else {
        times[middle]
    }
}
