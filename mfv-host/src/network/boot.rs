//! The boot's network phase: loopback up, then the host's network from `mfv.net=` (which
//! takes precedence) or the configuration's `[network]` section ([`configure`]). Static
//! settings go through mfv-net's `apply` (verified, rolled back on failure); DHCP clients keep
//! running in the background and report their events as lines.
//!
//! The system work sits behind the narrow [`Network`] trait: [`NetlinkNetwork`] is the real
//! one, [`RecordingNetwork`] records the calls for tests of the callers. Lines `configure`
//! reports (PID 1 prints them after `mfv-init: `):
//!
//! - `net: lo up`
//! - `net: from mfv.net=SPEC`, `net: from the configuration on DEVICE`, or
//!   `net: not configured (no mfv.net= and no configuration): loopback only`
//! - `net: IFACE picked: the first network card with carrier` (when no interface is named)
//! - `net: CHANGE` for each change a static apply made (`add 10.0.2.20/24 to eth0`)
//! - `net: IFACE: DHCP client started`
//! - from the DHCP clients, later ([`dhcp_event_line`]):
//!   `net: eth0 bound 10.0.2.15/24 via 10.0.2.2 (lease 86400 s)`, ...,
//!   `net: eth0: DHCP client stopped: ERROR`
//!
//! DHCP never takes over static settings ([`BootDhcp`]): each client's router becomes a
//! default route at [`LEASE_ROUTE_METRIC`] plus the interface's position among the DHCP
//! interfaces (so the first one's router wins), above the metric 0 of a static gateway, which
//! therefore always carries the traffic; and leases write `resolv.conf` only when no DNS
//! servers are configured.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mfv_linux::atomic_file::WriteFailure;
use mfv_linux::error_chain;
use mfv_net::dhcp::LEASE_ROUTE_METRIC;
use mfv_net::{
    ApplyOptions, Link, Netlink, NetworkState, ProvisionalApply, ProvisionalOutcome, RollbackReport,
};

use super::dhcp::{DhcpSession, DhcpSettings, SessionEvent, dhcp_event_line};
use super::plan::{
    NetworkPlan, NetworkSteps, boot_option_steps, config_steps, dhcp_hostname, named_interface,
};
use super::{NetworkError, nic_candidates};

/// How long the phase waits for a network card with carrier when it has to pick one.
pub const CARRIER_WAIT: Duration = Duration::from_secs(5);

/// How often the carrier of the candidate cards is looked at.
const CARRIER_POLL: Duration = Duration::from_millis(50);

/// The network work of the boot's network phase.
pub trait Network {
    /// Sets the loopback interface up.
    fn loopback_up(&mut self) -> Result<(), NetworkError>;
    /// Sets the network cards up and returns the first one (in kernel order) that has carrier
    /// within `wait`; the others it set up are set down again.
    fn first_nic_with_carrier(&mut self, wait: Duration) -> Result<String, NetworkError>;
    /// Applies `state` (verified, rolled back on failure); returns the changes made.
    fn apply(&mut self, state: &NetworkState) -> Result<Vec<String>, NetworkError>;
    /// Sets `interface` up and starts a DHCP client on it that runs in the background, as
    /// `client` says; a client already running there is stopped first.
    fn start_dhcp(&mut self, interface: &str, client: &BootDhcp) -> Result<(), NetworkError>;
    /// Stops the DHCP client of `interface`, leaving its lease configured.
    fn stop_dhcp(&mut self, interface: &str) -> Result<(), NetworkError>;
    /// Applies `state` like [`Network::apply`], provisionally: the previous state of the
    /// interfaces it touches, and of `resolv.conf`, is kept until
    /// [`Network::keep_provisional`] or [`Network::roll_back_provisional`]. Should neither
    /// come within `backstop`, mfv-net restores it by itself.
    fn apply_provisionally(
        &mut self,
        state: &NetworkState,
        backstop: Duration,
    ) -> Result<Vec<String>, NetworkError>;
    /// Keeps the provisionally applied state; fails when the backstop restored the previous
    /// one already.
    fn keep_provisional(&mut self) -> Result<(), NetworkError>;
    /// Restores the state from before the provisional apply now; the report says how it
    /// went.
    fn roll_back_provisional(&mut self) -> Result<RollbackReport, NetworkError>;
}

/// How a DHCP client the boot starts uses its leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootDhcp {
    /// The host name sent to the server.
    pub hostname: Option<String>,
    /// Whether the lease's DNS servers are written to `resolv.conf`: only when the plan sets
    /// none.
    pub lease_dns: bool,
    /// The metric of the lease's default route.
    pub route_metric: u32,
}

/// Runs the phase: loopback, then `plan`; each line goes to `log`. `hostname` is sent by the
/// DHCP clients (its first label). Returns the steps taken, with the interface picked: the
/// network in effect, which a later change replaces.
pub fn configure(
    network: &mut dyn Network,
    plan: &NetworkPlan,
    hostname: &str,
    log: &mut dyn FnMut(String),
) -> Result<NetworkSteps, NetworkError> {
    network
        .loopback_up()
        .map_err(|error| NetworkError::LoopbackUp(Box::new(error)))?;
    log("net: lo up".to_owned());
    let steps = match plan {
        NetworkPlan::LoopbackOnly => {
            log("net: not configured (no mfv.net= and no configuration): loopback only".into());
            return Ok(NetworkSteps::default());
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
        for change in network.apply(&steps.state)? {
            log(format!("net: {change}"));
        }
    }
    for (interface, client) in dhcp_clients(&steps, hostname) {
        start_dhcp(network, &interface, &client)?;
        log(format!("net: {interface}: DHCP client started"));
    }
    Ok(steps)
}

/// The DHCP clients `steps` runs on a host named `hostname`, each with how it uses its
/// leases: the first interface's router wins, and leases write `resolv.conf` only when the
/// steps set no DNS servers.
pub fn dhcp_clients(steps: &NetworkSteps, hostname: &str) -> Vec<(String, BootDhcp)> {
    let hostname = dhcp_hostname(hostname);
    let lease_dns = steps.state.dns.is_none();
    (LEASE_ROUTE_METRIC..)
        .zip(&steps.dhcp)
        .map(|(metric, interface)| {
            let client = BootDhcp {
                hostname: hostname.clone(),
                lease_dns,
                route_metric: metric,
            };
            (interface.clone(), client)
        })
        .collect()
}

/// Starts `client` on `interface`, the error naming the interface.
pub fn start_dhcp(
    network: &mut dyn Network,
    interface: &str,
    client: &BootDhcp,
) -> Result<(), NetworkError> {
    network
        .start_dhcp(interface, client)
        .map_err(|error| NetworkError::StartDhcp {
            interface: interface.to_owned(),
            source: Box::new(error),
        })
}

/// Sets the candidate cards up and returns the first one (in kernel order) with carrier within
/// `wait`; the cards it raised and did not pick are set down again.
pub async fn first_nic_with_carrier(
    netlink: &Netlink,
    wait: Duration,
) -> Result<String, NetworkError> {
    let links = netlink.links().await?;
    let candidates: Vec<Link> = nic_candidates(&links).into_iter().cloned().collect();
    if candidates.is_empty() {
        return Err(NetworkError::NoNetworkCard);
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
            // Left up, an unused card does no harm: not worth failing for.
            let _ = netlink.set_down(name).await;
        }
    }
    picked.ok_or_else(|| NetworkError::NoCarrier {
        waited: wait,
        looked_at: candidates.into_iter().map(|link| link.name).collect(),
    })
}

/// Where the lines of background work (the DHCP clients' events) go.
pub type LineSink = Arc<dyn Fn(String) + Send + Sync>;

/// The real network: rtnetlink in this network namespace, through a tokio runtime with one
/// worker thread (`net`) started at first use; the DHCP clients run on it and are kept by
/// interface until stopped.
pub struct NetlinkNetwork {
    resolv_conf: PathBuf,
    lines: LineSink,
    connected: Option<(tokio::runtime::Runtime, Netlink)>,
    dhcp: BTreeMap<String, DhcpSession>,
    /// The provisional apply waiting for a decision, with `resolv.conf` as it was before
    /// (`None`: there was none), since DHCP clients may write it too.
    provisional: Option<(ProvisionalApply, Option<Vec<u8>>)>,
}

impl std::fmt::Debug for NetlinkNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetlinkNetwork")
            .field("resolv_conf", &self.resolv_conf)
            .field("connected", &self.connected.is_some())
            .field("dhcp", &self.dhcp.keys().collect::<Vec<_>>())
            .field("provisional", &self.provisional.is_some())
            .finish_non_exhaustive()
    }
}

impl NetlinkNetwork {
    /// Writes the resolver settings (static or from leases) to `resolv_conf`; the DHCP
    /// clients' event lines go to `lines`.
    pub fn new(resolv_conf: impl Into<PathBuf>, lines: LineSink) -> NetlinkNetwork {
        NetlinkNetwork {
            resolv_conf: resolv_conf.into(),
            lines,
            connected: None,
            dhcp: BTreeMap::new(),
            provisional: None,
        }
    }

    fn connection(&mut self) -> Result<&(tokio::runtime::Runtime, Netlink), NetworkError> {
        let connected = match self.connected.take() {
            Some(connected) => connected,
            None => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("net")
                    .enable_all()
                    .build()
                    .map_err(NetworkError::Runtime)?;
                let netlink = runtime.block_on(async { Netlink::connect() })?;
                (runtime, netlink)
            }
        };
        Ok(self.connected.insert(connected))
    }
}

impl Network for NetlinkNetwork {
    fn loopback_up(&mut self) -> Result<(), NetworkError> {
        let (runtime, netlink) = self.connection()?;
        Ok(runtime.block_on(netlink.set_up("lo"))?)
    }

    fn first_nic_with_carrier(&mut self, wait: Duration) -> Result<String, NetworkError> {
        let (runtime, netlink) = self.connection()?;
        runtime.block_on(first_nic_with_carrier(netlink, wait))
    }

    fn apply(&mut self, state: &NetworkState) -> Result<Vec<String>, NetworkError> {
        let options = ApplyOptions {
            resolv_conf: Some(self.resolv_conf.clone()),
        };
        let (runtime, netlink) = self.connection()?;
        let report = runtime
            .block_on(mfv_net::apply(netlink, state, &options))
            .map_err(|source| NetworkError::Apply {
                action: "apply the network state".to_owned(),
                source,
            })?;
        Ok(report.changes)
    }

    fn start_dhcp(&mut self, interface: &str, client: &BootDhcp) -> Result<(), NetworkError> {
        if self.dhcp.contains_key(interface) {
            self.stop_dhcp(interface)?;
        }
        let settings = DhcpSettings {
            hostname: client.hostname.clone(),
            acquire_timeout: None,
            resolv_conf: client.lease_dns.then(|| self.resolv_conf.clone()),
            release_on_stop: false,
            route_metric: client.route_metric,
        };
        let lines = Arc::clone(&self.lines);
        let (runtime, netlink) = self.connection()?;
        let (session, mut events) =
            runtime.block_on(DhcpSession::start(netlink, interface, &settings))?;
        let name = interface.to_owned();
        runtime.spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    SessionEvent::Dhcp(event) => {
                        if let Some(line) = dhcp_event_line(&name, &event) {
                            lines(line);
                        }
                    }
                    SessionEvent::Ended(Err(error)) => {
                        lines(format!(
                            "net: {name}: DHCP client stopped: {}",
                            error_chain(&error)
                        ));
                    }
                    SessionEvent::Ended(Ok(())) => {}
                }
            }
        });
        self.dhcp.insert(interface.to_owned(), session);
        Ok(())
    }

    fn stop_dhcp(&mut self, interface: &str) -> Result<(), NetworkError> {
        let session = self
            .dhcp
            .remove(interface)
            .ok_or_else(|| NetworkError::NoDhcpClient {
                interface: interface.to_owned(),
            })?;
        let (runtime, _) = self.connection()?;
        runtime.block_on(session.stop())
    }

    fn apply_provisionally(
        &mut self,
        state: &NetworkState,
        backstop: Duration,
    ) -> Result<Vec<String>, NetworkError> {
        if self.provisional.is_some() {
            return Err(NetworkError::ProvisionalPending);
        }
        let resolv_conf_before = match std::fs::read(&self.resolv_conf) {
            Ok(bytes) => Some(bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(NetworkError::ResolvConf {
                    path: self.resolv_conf.clone(),
                    source,
                });
            }
        };
        let options = ApplyOptions {
            resolv_conf: Some(self.resolv_conf.clone()),
        };
        let (runtime, netlink) = self.connection()?;
        let provisional = runtime
            .block_on(mfv_net::apply_provisional(
                netlink, state, &options, backstop,
            ))
            .map_err(|source| NetworkError::Apply {
                action: "apply the network state".to_owned(),
                source,
            })?;
        let changes = provisional.report().changes.clone();
        self.provisional = Some((provisional, resolv_conf_before));
        Ok(changes)
    }

    fn keep_provisional(&mut self) -> Result<(), NetworkError> {
        let (provisional, _) = self
            .provisional
            .take()
            .ok_or(NetworkError::NoProvisionalChange)?;
        let (runtime, _) = self.connection()?;
        match runtime.block_on(provisional.confirm()) {
            ProvisionalOutcome::Confirmed => Ok(()),
            ProvisionalOutcome::RolledBack(rollback) => {
                Err(NetworkError::RolledBackAlready { rollback })
            }
        }
    }

    fn roll_back_provisional(&mut self) -> Result<RollbackReport, NetworkError> {
        let (provisional, resolv_conf_before) = self
            .provisional
            .take()
            .ok_or(NetworkError::NoProvisionalChange)?;
        let path = self.resolv_conf.clone();
        let (runtime, _) = self.connection()?;
        let mut report = match runtime.block_on(provisional.roll_back()) {
            ProvisionalOutcome::RolledBack(report) => report,
            // roll_back never keeps a change.
            ProvisionalOutcome::Confirmed => RollbackReport::default(),
        };
        let restored = match resolv_conf_before {
            Some(bytes) => mfv_linux::atomic_file::replace_file(&path, &bytes, 0o644)
                .map_err(|WriteFailure { step, source }| format!("{step}: {source}")),
            None => match std::fs::remove_file(&path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    Err(error.to_string())
                }
                _ => Ok(()),
            },
        };
        if let Err(error) = restored {
            report
                .failures
                .push(format!("restore {}: {error}", path.display()));
        }
        Ok(report)
    }
}

/// A [`Network`] that records its calls and fails where told, for the tests of callers.
#[derive(Debug, Default)]
pub struct RecordingNetwork {
    /// Every call, as a line (`loopback up`, `apply eth0 br0`, `dhcp eth0 hostname h`).
    pub calls: Vec<String>,
    /// Every state applied, in order.
    pub applied: Vec<NetworkState>,
    /// The changes each apply reports.
    pub apply_changes: Vec<String>,
    /// What picking a card finds; `None`: no card has carrier.
    pub nic_with_carrier: Option<String>,
    /// Whether setting lo up fails.
    pub loopback_fails: bool,
    /// Whether applying fails.
    pub apply_fails: bool,
    /// Whether starting a DHCP client fails.
    pub dhcp_fails: bool,
    /// The interfaces with a DHCP client running.
    pub dhcp_running: Vec<String>,
    /// Every DHCP client started, with how it uses its leases, in order.
    pub dhcp_clients: Vec<(String, BootDhcp)>,
    /// Whether a provisional apply waits for a decision.
    pub provisional: bool,
    /// Whether a provisional apply fails.
    pub provisional_fails: bool,
    /// What rolling back a provisional apply reports as failed.
    pub rollback_failures: Vec<String>,
    /// Whether keeping a provisional apply finds it rolled back by the backstop.
    pub backstop_passed: bool,
}

impl RecordingNetwork {
    fn no_such_interface(name: &str) -> NetworkError {
        NetworkError::Netlink(mfv_net::NetError::NoSuchInterface {
            name: name.to_owned(),
        })
    }
}

impl Network for RecordingNetwork {
    fn loopback_up(&mut self) -> Result<(), NetworkError> {
        self.calls.push("loopback up".to_owned());
        if self.loopback_fails {
            return Err(Self::no_such_interface("lo"));
        }
        Ok(())
    }

    fn first_nic_with_carrier(&mut self, wait: Duration) -> Result<String, NetworkError> {
        self.calls
            .push(format!("first nic with carrier within {wait:?}"));
        self.nic_with_carrier
            .clone()
            .ok_or_else(|| NetworkError::NoCarrier {
                waited: wait,
                looked_at: vec!["eth0".to_owned()],
            })
    }

    fn apply(&mut self, state: &NetworkState) -> Result<Vec<String>, NetworkError> {
        let names: Vec<&str> = state
            .interfaces
            .iter()
            .map(|config| config.name.as_str())
            .collect();
        self.calls.push(format!("apply {}", names.join(" ")));
        self.applied.push(state.clone());
        if self.apply_fails {
            return Err(NetworkError::Apply {
                action: "apply the network state".to_owned(),
                source: mfv_net::ApplyError::Invalid {
                    problem: "recorded failure".to_owned(),
                },
            });
        }
        Ok(self.apply_changes.clone())
    }

    fn start_dhcp(&mut self, interface: &str, client: &BootDhcp) -> Result<(), NetworkError> {
        self.calls.push(format!(
            "dhcp {interface} hostname {}",
            client.hostname.as_deref().unwrap_or("-")
        ));
        self.dhcp_clients
            .push((interface.to_owned(), client.clone()));
        if self.dhcp_fails {
            return Err(Self::no_such_interface(interface));
        }
        self.dhcp_running.retain(|running| running != interface);
        self.dhcp_running.push(interface.to_owned());
        Ok(())
    }

    fn stop_dhcp(&mut self, interface: &str) -> Result<(), NetworkError> {
        self.calls.push(format!("stop dhcp {interface}"));
        let before = self.dhcp_running.len();
        self.dhcp_running.retain(|running| running != interface);
        if self.dhcp_running.len() == before {
            return Err(NetworkError::NoDhcpClient {
                interface: interface.to_owned(),
            });
        }
        Ok(())
    }

    fn apply_provisionally(
        &mut self,
        state: &NetworkState,
        backstop: Duration,
    ) -> Result<Vec<String>, NetworkError> {
        let names: Vec<&str> = state
            .interfaces
            .iter()
            .map(|config| config.name.as_str())
            .collect();
        self.calls.push(format!(
            "apply provisionally {} (backstop {backstop:?})",
            names.join(" ")
        ));
        self.applied.push(state.clone());
        if self.provisional {
            return Err(NetworkError::ProvisionalPending);
        }
        if self.provisional_fails {
            return Err(NetworkError::Apply {
                action: "apply the network state".to_owned(),
                source: mfv_net::ApplyError::Invalid {
                    problem: "recorded failure".to_owned(),
                },
            });
        }
        self.provisional = true;
        Ok(self.apply_changes.clone())
    }

    fn keep_provisional(&mut self) -> Result<(), NetworkError> {
        self.calls.push("keep provisional".to_owned());
        if !std::mem::take(&mut self.provisional) {
            return Err(NetworkError::NoProvisionalChange);
        }
        if self.backstop_passed {
            return Err(NetworkError::RolledBackAlready {
                rollback: RollbackReport {
                    failures: self.rollback_failures.clone(),
                },
            });
        }
        Ok(())
    }

    fn roll_back_provisional(&mut self) -> Result<RollbackReport, NetworkError> {
        self.calls.push("roll back provisional".to_owned());
        if !std::mem::take(&mut self.provisional) {
            return Err(NetworkError::NoProvisionalChange);
        }
        Ok(RollbackReport {
            failures: self.rollback_failures.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use mfv_net::Route;

    use super::*;
    use crate::network::plan::tests::{cidr, config_network, entry, ip, provisioning};

    /// Runs the phase on `network`; returns the console lines, or the error after them.
    fn run(network: &mut RecordingNetwork, plan: &NetworkPlan) -> (Vec<String>, Option<String>) {
        let mut lines = Vec::new();
        let result = configure(network, plan, "vmhost1.example.org", &mut |line| {
            lines.push(line)
        });
        (lines, result.err().map(|error| error_chain(&error)))
    }

    #[test]
    fn without_settings_only_loopback_comes_up() {
        let mut network = RecordingNetwork::default();
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
        let mut network = RecordingNetwork::default();
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
        let mut network = RecordingNetwork {
            nic_with_carrier: Some("ens3".into()),
            ..RecordingNetwork::default()
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
        let mut network = RecordingNetwork::default();
        let (lines, error) = run(&mut network, &NetworkPlan::BootOption(provisioning("dhcp")));
        assert_eq!(lines, ["net: lo up", "net: from mfv.net=dhcp"]);
        assert_eq!(
            error.as_deref(),
            Some("no network card has carrier after 5 s (looked at eth0)")
        );
    }

    #[test]
    fn a_static_address_is_applied_and_each_change_logged() {
        let mut network = RecordingNetwork {
            apply_changes: vec![
                "add 10.0.2.20/24 to eth0".into(),
                "add the route default via 10.0.2.2 dev eth0".into(),
            ],
            ..RecordingNetwork::default()
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
        let mut network = RecordingNetwork {
            loopback_fails: true,
            ..RecordingNetwork::default()
        };
        let (lines, error) = run(&mut network, &NetworkPlan::LoopbackOnly);
        assert!(lines.is_empty());
        assert_eq!(
            error.as_deref(),
            Some("cannot set lo up: no interface named \"lo\"")
        );

        let mut network = RecordingNetwork {
            apply_fails: true,
            ..RecordingNetwork::default()
        };
        let plan = NetworkPlan::BootOption(provisioning("eth0:10.0.2.20/24"));
        let (_, error) = run(&mut network, &plan);
        assert_eq!(
            error.as_deref(),
            Some("cannot apply the network state: invalid network state: recorded failure")
        );

        let mut network = RecordingNetwork {
            dhcp_fails: true,
            ..RecordingNetwork::default()
        };
        let plan = NetworkPlan::BootOption(provisioning("eth0:dhcp"));
        let (lines, error) = run(&mut network, &plan);
        assert_eq!(lines, ["net: lo up", "net: from mfv.net=eth0:dhcp"]);
        assert_eq!(
            error.as_deref(),
            Some("cannot start the DHCP client on eth0: no interface named \"eth0\"")
        );
    }

    /// The DHCP clients `plan` starts, each with how it uses its leases.
    fn dhcp_clients(plan: &NetworkPlan) -> Vec<(String, BootDhcp)> {
        let mut network = RecordingNetwork::default();
        let (_, error) = run(&mut network, plan);
        assert_eq!(error, None);
        network.dhcp_clients
    }

    fn client(interface: &str, lease_dns: bool, route_metric: u32) -> (String, BootDhcp) {
        let client = BootDhcp {
            hostname: Some("vmhost1".into()),
            lease_dns,
            route_metric,
        };
        (interface.to_owned(), client)
    }

    #[test]
    fn leases_never_write_dns_when_servers_are_configured() {
        let mut network = config_network();
        network
            .interfaces
            .push(entry("eth1", mfv_config::schema::InterfaceMode::Dhcp));
        let device = PathBuf::from("/dev/sda1");
        let with_servers = NetworkPlan::Config {
            device: device.clone(),
            network: network.clone(),
        };
        assert_eq!(
            dhcp_clients(&with_servers),
            [client("eth0.7", false, 1024), client("eth1", false, 1025)]
        );
        network.dns.servers.clear();
        let without_servers = NetworkPlan::Config { device, network };
        assert_eq!(
            dhcp_clients(&without_servers),
            [client("eth0.7", true, 1024), client("eth1", true, 1025)]
        );
        let boot_option = NetworkPlan::BootOption(provisioning("eth0:dhcp"));
        assert_eq!(dhcp_clients(&boot_option), [client("eth0", true, 1024)]);
    }

    #[test]
    fn the_configuration_is_applied_then_dhcp_started() {
        let mut network = RecordingNetwork {
            apply_changes: vec!["create bridge br0".into()],
            ..RecordingNetwork::default()
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
}
