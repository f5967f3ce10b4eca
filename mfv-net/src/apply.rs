//! Applying a [`NetworkState`] to the kernel: snapshot, change, re-read and verify, and restore
//! the snapshot when anything fails, at once or (provisional apply) unless confirmed in time.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use rtnetlink::packet_route::route::RouteMessage;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::state::{Difference, InterfaceKind, NetworkState, ObservedLink, differences};
use crate::{DnsError, NetError, Netlink, Route, write_resolv_conf};
use mfv_linux::atomic_file::{WriteFailure, replace_file};

/// Highest VLAN id (4095 is reserved).
const MAX_VLAN_ID: u16 = 4094;

/// Where [`apply`] writes what is not netlink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// The `resolv.conf` written when the desired state has DNS settings.
    pub resolv_conf: Option<PathBuf>,
}

/// What [`apply`] changed, one line per change, e.g. `add 192.0.2.10/24 to br0`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// The changes in the order they were made; empty when the state was already right.
    pub changes: Vec<String>,
}

/// How restoring the snapshot went: every step that failed, by what it tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackReport {
    /// The restore steps that failed, with the error; empty when the old state is back.
    pub failures: Vec<String>,
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failures.is_empty() {
            f.write_str("the previous state was restored")
        } else {
            write!(
                f,
                "restoring the previous state failed: {}",
                self.failures.join("; ")
            )
        }
    }
}

/// Why [`apply`] did not leave the desired state in place.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The desired state contradicts itself; nothing was changed.
    #[error("invalid network state: {problem}")]
    Invalid {
        /// What is wrong.
        problem: String,
    },
    /// The current state could not be read; nothing was changed.
    #[error("cannot read the current network state")]
    Snapshot(#[source] NetError),
    /// A change failed; the snapshot was restored as far as `rollback` says.
    #[error("applying the network state failed; {rollback}")]
    Change {
        /// The change that failed.
        #[source]
        source: NetError,
        /// How restoring the previous state went.
        rollback: RollbackReport,
    },
    /// `resolv.conf` could not be written; the snapshot was restored as far as `rollback` says.
    #[error("writing the DNS settings failed; {rollback}")]
    Dns {
        /// Why.
        #[source]
        source: DnsError,
        /// How restoring the previous state went.
        rollback: RollbackReport,
    },
    /// The kernel's state differs from the desired one after applying; the snapshot was restored
    /// as far as `rollback` says.
    #[error("the network state differs after applying ({}); {rollback}", join_differences(.differences))]
    Verify {
        /// Every difference found.
        differences: Vec<Difference>,
        /// How restoring the previous state went.
        rollback: RollbackReport,
    },
}

fn join_differences(differences: &[Difference]) -> String {
    differences
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The state of every interface a [`NetworkState`] touches, taken before applying it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    links: Vec<ObservedLink>,
    absent: Vec<String>,
    routes: Vec<(Route, RouteMessage)>,
    resolv_conf: Option<(PathBuf, Option<Vec<u8>>)>,
}

/// Reads the kernel's state of the interfaces `names` (those that exist) and their routes.
pub async fn observe(
    netlink: &Netlink,
    names: &[String],
) -> Result<(Vec<ObservedLink>, Vec<Route>), NetError> {
    let links = netlink.links().await?;
    let mut observed = Vec::new();
    for name in names {
        let Some(link) = links.iter().find(|link| &link.name == name) else {
            continue;
        };
        let addresses = netlink.configured_addresses(name).await?;
        let bond_primary = if link.kind.as_deref() == Some("bond") {
            netlink.bond_primary(name).await?
        } else {
            None
        };
        observed.push(ObservedLink {
            name: name.clone(),
            kind: link.kind.clone(),
            addresses,
            mtu: link.mtu,
            up: link.admin_up,
            master: link.master.clone(),
            bond_primary,
        });
    }
    let routes = netlink
        .routes()
        .await?
        .into_iter()
        .filter(|route| names.contains(&route.interface))
        .collect();
    Ok((observed, routes))
}

async fn take_snapshot(
    netlink: &Netlink,
    desired: &NetworkState,
    options: &ApplyOptions,
) -> Result<Snapshot, ApplyError> {
    let names = desired.involved_interfaces();
    let (links, _) = observe(netlink, &names)
        .await
        .map_err(ApplyError::Snapshot)?;
    let routes = netlink
        .routes_as_sent()
        .await
        .map_err(ApplyError::Snapshot)?
        .into_iter()
        .filter(|(route, _)| names.contains(&route.interface))
        .collect();
    let absent = names
        .iter()
        .filter(|name| !links.iter().any(|link| &link.name == *name))
        .cloned()
        .collect();
    let resolv_conf = match (&desired.dns, &options.resolv_conf) {
        (Some(_), Some(path)) => match std::fs::read(path) {
            Ok(bytes) => Some((path.clone(), Some(bytes))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Some((path.clone(), None)),
            Err(source) => {
                return Err(ApplyError::Snapshot(NetError::Kernel {
                    action: format!("read {}", path.display()),
                    source,
                }));
            }
        },
        _ => None,
    };
    Ok(Snapshot {
        links,
        absent,
        routes,
        resolv_conf,
    })
}

fn validate(desired: &NetworkState) -> Result<(), ApplyError> {
    let invalid = |problem: String| Err(ApplyError::Invalid { problem });
    for (position, config) in desired.interfaces.iter().enumerate() {
        if desired.interfaces[..position]
            .iter()
            .any(|earlier| earlier.name == config.name)
        {
            return invalid(format!("interface {} is listed twice", config.name));
        }
        for (index, address) in config.addresses.iter().enumerate() {
            if config.addresses[..index].contains(address) {
                return invalid(format!(
                    "{}: address {address} is listed twice",
                    config.name
                ));
            }
        }
        match &config.kind {
            InterfaceKind::Vlan { id, .. } if *id == 0 || *id > MAX_VLAN_ID => {
                return invalid(format!(
                    "{}: VLAN id {id} is out of range 1..={MAX_VLAN_ID}",
                    config.name
                ));
            }
            InterfaceKind::Vlan { parent, .. } if *parent == config.name => {
                return invalid(format!("{}: a VLAN cannot be its own parent", config.name));
            }
            InterfaceKind::ActiveBackupBond {
                primary: Some(primary),
                ports,
            } if !ports.contains(primary) => {
                return invalid(format!(
                    "{}: primary port {primary} is not one of its ports",
                    config.name
                ));
            }
            _ => {}
        }
        let ports = config.kind.ports();
        for (index, port) in ports.iter().enumerate() {
            if *port == config.name {
                return invalid(format!("{}: cannot be a port of itself", config.name));
            }
            if ports[..index].contains(port) {
                return invalid(format!("{}: port {port} is listed twice", config.name));
            }
        }
    }
    Ok(())
}

/// Applies `desired`: takes a snapshot of the interfaces it touches, makes the changes, re-reads
/// the kernel's state and compares. On any failure the snapshot is restored and the error says
/// what failed and how the restore went.
pub async fn apply(
    netlink: &Netlink,
    desired: &NetworkState,
    options: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    apply_keeping_snapshot(netlink, desired, options)
        .await
        .map(|(report, _)| report)
}

async fn apply_keeping_snapshot(
    netlink: &Netlink,
    desired: &NetworkState,
    options: &ApplyOptions,
) -> Result<(ApplyReport, Snapshot), ApplyError> {
    validate(desired)?;
    let snapshot = take_snapshot(netlink, desired, options).await?;
    let mut report = ApplyReport::default();
    if let Err(source) = make_changes(netlink, desired, &snapshot, &mut report).await {
        let rollback = restore(netlink, &snapshot).await;
        return Err(ApplyError::Change { source, rollback });
    }
    if let (Some(dns), Some(path)) = (&desired.dns, &options.resolv_conf) {
        if let Err(source) = write_resolv_conf(path, dns) {
            let rollback = restore(netlink, &snapshot).await;
            return Err(ApplyError::Dns { source, rollback });
        }
        report.changes.push(format!("write {}", path.display()));
    }
    let names = desired.involved_interfaces();
    let found = match observe(netlink, &names).await {
        Ok((links, routes)) => differences(desired, &links, &routes),
        Err(source) => {
            let rollback = restore(netlink, &snapshot).await;
            return Err(ApplyError::Change { source, rollback });
        }
    };
    if !found.is_empty() {
        let rollback = restore(netlink, &snapshot).await;
        return Err(ApplyError::Verify {
            differences: found,
            rollback,
        });
    }
    Ok((report, snapshot))
}

async fn make_changes(
    netlink: &Netlink,
    desired: &NetworkState,
    snapshot: &Snapshot,
    report: &mut ApplyReport,
) -> Result<(), NetError> {
    let observed = |name: &str| snapshot.links.iter().find(|link| link.name == name);
    // Interfaces set up on the way, which the snapshot still shows down.
    let mut set_up_already: Vec<&str> = Vec::new();
    for config in &desired.interfaces {
        if observed(&config.name).is_some() {
            continue;
        }
        match &config.kind {
            InterfaceKind::Existing => {
                return Err(NetError::NoSuchInterface {
                    name: config.name.clone(),
                });
            }
            InterfaceKind::Bridge { .. } => netlink.create_bridge(&config.name).await?,
            InterfaceKind::Vlan { parent, id } => {
                netlink.create_vlan(&config.name, parent, *id).await?;
            }
            InterfaceKind::ActiveBackupBond { primary, .. } => {
                netlink
                    .create_active_backup_bond(&config.name, primary.as_deref())
                    .await?;
            }
        }
        report.changes.push(format!(
            "create {} {}",
            config.kind.kernel_kind().unwrap_or("interface"),
            config.name
        ));
    }
    for config in &desired.interfaces {
        for port in config.kind.ports() {
            let current = observed(port).and_then(|link| link.master.as_deref());
            if current != Some(config.name.as_str()) {
                netlink.set_master(port, &config.name).await?;
                report
                    .changes
                    .push(format!("make {port} a port of {}", config.name));
            }
            netlink.set_up(port).await?;
        }
        if let InterfaceKind::Vlan { parent, .. } = &config.kind {
            // The kernel keeps a VLAN down while its parent is down.
            if !observed(parent).is_some_and(|link| link.up)
                && !set_up_already.contains(&parent.as_str())
            {
                netlink.set_up(parent).await?;
                report.changes.push(format!("set {parent} up"));
                set_up_already.push(parent);
            }
        }
    }
    for config in &desired.interfaces {
        if let Some(mtu) = config.mtu {
            if observed(&config.name).map(|link| link.mtu) != Some(mtu) {
                netlink.set_mtu(&config.name, mtu).await?;
                report
                    .changes
                    .push(format!("set the MTU of {} to {mtu}", config.name));
            }
        }
    }
    let managed = |name: &str| desired.interfaces.iter().any(|config| config.name == name);
    for (route, _) in &snapshot.routes {
        if managed(&route.interface) && !desired.routes.iter().any(|wanted| wanted.matches(route)) {
            match netlink.remove_route(route).await {
                Ok(()) | Err(NetError::RouteNotPresent { .. }) => {}
                Err(error) => return Err(error),
            }
            report.changes.push(format!("remove the route {route}"));
        }
    }
    for config in &desired.interfaces {
        let current: &[crate::IpCidr] = observed(&config.name)
            .map(|link| link.addresses.as_slice())
            .unwrap_or_default();
        for address in current {
            if !config.addresses.contains(address) {
                // Setting a bond port down may have taken an IPv6 address with it.
                match netlink.remove_address(&config.name, *address).await {
                    Ok(()) | Err(NetError::AddressNotPresent { .. }) => {}
                    Err(error) => return Err(error),
                }
                report
                    .changes
                    .push(format!("remove {address} from {}", config.name));
            }
        }
        for address in &config.addresses {
            if !current.contains(address) {
                netlink.add_address(&config.name, *address).await?;
                report
                    .changes
                    .push(format!("add {address} to {}", config.name));
            }
        }
    }
    for config in &desired.interfaces {
        let currently_up = observed(&config.name).is_some_and(|link| link.up)
            || set_up_already.contains(&config.name.as_str());
        if config.up && !currently_up {
            netlink.set_up(&config.name).await?;
            report.changes.push(format!("set {} up", config.name));
        } else if !config.up && currently_up {
            netlink.set_down(&config.name).await?;
            report.changes.push(format!("set {} down", config.name));
        }
    }
    for route in &desired.routes {
        // Removing addresses or interfaces may have taken routes with them: look again.
        let present = netlink.routes().await?;
        if !present.iter().any(|actual| route.matches(actual)) {
            netlink.add_route(route).await?;
            report.changes.push(format!("add the route {route}"));
        }
    }
    Ok(())
}

/// Puts the interfaces, routes and `resolv.conf` of `snapshot` back, step by step, going on
/// after a failed step; interfaces that did not exist then are deleted.
pub async fn restore(netlink: &Netlink, snapshot: &Snapshot) -> RollbackReport {
    let mut failures = Vec::new();
    let mut note = |what: String, result: Result<(), NetError>| {
        if let Err(error) = result {
            failures.push(format!("{what}: {}", mfv_linux::error_chain(&error)));
        }
    };
    for name in snapshot.absent.iter().rev() {
        match netlink.delete_link(name).await {
            Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
            Err(error) => note(format!("delete {name}"), Err(error)),
        }
    }
    let names: Vec<String> = snapshot
        .links
        .iter()
        .map(|link| link.name.clone())
        .collect();
    let (now, routes_now) = match observe(netlink, &names).await {
        Ok(state) => state,
        Err(error) => {
            note("read the network state".into(), Err(error));
            return RollbackReport { failures };
        }
    };
    for before in &snapshot.links {
        let Some(current) = now.iter().find(|link| link.name == before.name) else {
            note(
                format!("restore {}", before.name),
                Err(NetError::NoSuchInterface {
                    name: before.name.clone(),
                }),
            );
            continue;
        };
        if current.master != before.master {
            let result = match &before.master {
                Some(master) => netlink.set_master(&before.name, master).await,
                None => netlink.remove_master(&before.name).await,
            };
            note(format!("restore the master of {}", before.name), result);
        }
        if current.mtu != before.mtu {
            let result = netlink.set_mtu(&before.name, before.mtu).await;
            note(format!("restore the MTU of {}", before.name), result);
        }
        for address in &current.addresses {
            if !before.addresses.contains(address) {
                let result = netlink.remove_address(&before.name, *address).await;
                note(format!("remove {address} from {}", before.name), result);
            }
        }
        for address in &before.addresses {
            if !current.addresses.contains(address) {
                let result = netlink.add_address(&before.name, *address).await;
                note(format!("add {address} to {}", before.name), result);
            }
        }
        let result = if before.up {
            netlink.set_up(&before.name).await
        } else {
            netlink.set_down(&before.name).await
        };
        note(format!("restore the state of {}", before.name), result);
    }
    for route in &routes_now {
        if !snapshot.routes.iter().any(|(before, _)| before == route) {
            match netlink.remove_route(route).await {
                Ok(()) | Err(NetError::RouteNotPresent { .. }) => {}
                Err(error) => note(format!("remove the route {route}"), Err(error)),
            }
        }
    }
    let routes_left = netlink.routes().await.unwrap_or_default();
    for (route, message) in &snapshot.routes {
        if !routes_left.contains(route) {
            let result = netlink.add_route_as_sent(route, message.clone()).await;
            note(format!("add the route {route}"), result);
        }
    }
    if let Some((path, contents)) = &snapshot.resolv_conf {
        let result = match contents {
            Some(bytes) => replace_file(path, bytes, 0o644)
                .map_err(|WriteFailure { step, source }| format!("{step}: {source}")),
            None => match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(error.to_string()),
            },
        };
        if let Err(error) = result {
            failures.push(format!("restore {}: {error}", path.display()));
        }
    }
    RollbackReport { failures }
}

/// How a provisional apply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisionalOutcome {
    /// Confirmed in time: the new state stays.
    Confirmed,
    /// Not confirmed in time: the previous state was restored as far as the report says.
    RolledBack(RollbackReport),
}

/// A network state applied provisionally: it is restored by itself unless
/// [`ProvisionalApply::confirm`] is called before the deadline, or at once with
/// [`ProvisionalApply::roll_back`].
#[derive(Debug)]
pub struct ProvisionalApply {
    report: ApplyReport,
    decide: oneshot::Sender<Decision>,
    outcome: JoinHandle<ProvisionalOutcome>,
}

/// What the owner of a provisional apply decided before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Keep,
    RollBack,
}

impl ProvisionalApply {
    /// What the apply changed.
    pub fn report(&self) -> &ApplyReport {
        &self.report
    }

    /// Keeps the new state, unless the deadline has passed already: then the outcome is
    /// [`ProvisionalOutcome::RolledBack`].
    pub async fn confirm(self) -> ProvisionalOutcome {
        // A failed send means the rollback has started: the outcome says so.
        let _ = self.decide.send(Decision::Keep);
        join_outcome(self.outcome).await
    }

    /// Restores the previous state now instead of at the deadline (an owner that must stop
    /// what it started on the new state first, such as DHCP clients, decides the moment).
    /// The outcome is always [`ProvisionalOutcome::RolledBack`].
    pub async fn roll_back(self) -> ProvisionalOutcome {
        // A failed send means the rollback has started at the deadline already.
        let _ = self.decide.send(Decision::RollBack);
        join_outcome(self.outcome).await
    }

    /// Waits, without confirming, until the deadline has passed and the rollback is done.
    pub async fn outcome(self) -> ProvisionalOutcome {
        let ProvisionalApply {
            decide, outcome, ..
        } = self;
        let outcome = join_outcome(outcome).await;
        drop(decide);
        outcome
    }
}

async fn join_outcome(task: JoinHandle<ProvisionalOutcome>) -> ProvisionalOutcome {
    match task.await {
        Ok(outcome) => outcome,
        Err(error) => ProvisionalOutcome::RolledBack(RollbackReport {
            failures: vec![format!("the rollback task ended abnormally: {error}")],
        }),
    }
}

/// Applies `desired` like [`apply`], then restores the previous state by itself (a tokio task)
/// unless the returned handle is confirmed within `confirm_within`. Dropping the handle
/// without confirming leaves the rollback to happen at the deadline. The rollback task runs on
/// the current tokio runtime, which must keep running until the deadline (the host daemon's
/// runtime does).
pub async fn apply_provisional(
    netlink: &Netlink,
    desired: &NetworkState,
    options: &ApplyOptions,
    confirm_within: Duration,
) -> Result<ProvisionalApply, ApplyError> {
    let (report, snapshot) = apply_keeping_snapshot(netlink, desired, options).await?;
    let (decide, decided) = oneshot::channel::<Decision>();
    let netlink = netlink.clone();
    let outcome = tokio::spawn(async move {
        let wait_for_decision = async {
            match decided.await {
                Ok(decision) => decision,
                // The handle was dropped: only the deadline can end the wait.
                Err(_) => std::future::pending().await,
            }
        };
        match tokio::time::timeout(confirm_within, wait_for_decision).await {
            Ok(Decision::Keep) => ProvisionalOutcome::Confirmed,
            Ok(Decision::RollBack) | Err(_) => {
                ProvisionalOutcome::RolledBack(restore(&netlink, &snapshot).await)
            }
        }
    });
    Ok(ProvisionalApply {
        report,
        decide,
        outcome,
    })
}

/// The kernel's current state of the interfaces `names` (those that exist) and their routes,
/// as a [`NetworkState`] that would leave them as they are: the starting point for a change.
pub async fn current_state(netlink: &Netlink, names: &[String]) -> Result<NetworkState, NetError> {
    let (links, routes) = observe(netlink, names).await?;
    let interfaces = links
        .into_iter()
        .map(|link| crate::state::InterfaceConfig {
            name: link.name,
            kind: InterfaceKind::Existing,
            addresses: link.addresses,
            mtu: Some(link.mtu),
            up: link.up,
        })
        .collect();
    Ok(NetworkState {
        interfaces,
        routes,
        dns: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::InterfaceConfig;

    fn interface(name: &str, kind: InterfaceKind, addresses: &[&str]) -> InterfaceConfig {
        InterfaceConfig {
            name: name.into(),
            kind,
            addresses: addresses.iter().map(|text| text.parse().unwrap()).collect(),
            mtu: None,
            up: true,
        }
    }

    fn check_invalid(state: NetworkState, expected: &str) {
        match validate(&state) {
            Err(ApplyError::Invalid { problem }) => assert_eq!(problem, expected),
            other => panic!("expected Invalid({expected}), got {other:?}"),
        }
    }

    #[test]
    fn an_interface_listed_twice_is_invalid() {
        let state = NetworkState {
            interfaces: vec![
                interface("eth0", InterfaceKind::Existing, &[]),
                interface("eth0", InterfaceKind::Existing, &[]),
            ],
            ..NetworkState::default()
        };
        check_invalid(state, "interface eth0 is listed twice");
    }

    #[test]
    fn an_address_listed_twice_is_invalid() {
        let state = NetworkState {
            interfaces: vec![interface(
                "eth0",
                InterfaceKind::Existing,
                &["192.0.2.10/24", "192.0.2.10/24"],
            )],
            ..NetworkState::default()
        };
        check_invalid(state, "eth0: address 192.0.2.10/24 is listed twice");
    }

    #[test]
    fn vlan_ids_outside_1_to_4094_are_invalid() {
        for id in [0, 4095] {
            let state = NetworkState {
                interfaces: vec![interface(
                    "eth0.x",
                    InterfaceKind::Vlan {
                        parent: "eth0".into(),
                        id,
                    },
                    &[],
                )],
                ..NetworkState::default()
            };
            check_invalid(
                state,
                &format!("eth0.x: VLAN id {id} is out of range 1..=4094"),
            );
        }
    }

    fn bond(ports: &[&str], primary: Option<&str>) -> NetworkState {
        NetworkState {
            interfaces: vec![interface(
                "bond0",
                InterfaceKind::ActiveBackupBond {
                    ports: ports.iter().map(|port| (*port).to_owned()).collect(),
                    primary: primary.map(Into::into),
                },
                &[],
            )],
            ..NetworkState::default()
        }
    }

    #[test]
    fn a_bond_primary_outside_its_ports_is_invalid() {
        check_invalid(
            bond(&["eth0", "eth1"], Some("eth2")),
            "bond0: primary port eth2 is not one of its ports",
        );
        validate(&bond(&["eth0", "eth1"], Some("eth1"))).unwrap();
    }

    #[test]
    fn a_port_listed_twice_or_a_port_of_itself_is_invalid() {
        check_invalid(
            bond(&["eth0", "eth0"], None),
            "bond0: port eth0 is listed twice",
        );
        check_invalid(bond(&["bond0"], None), "bond0: cannot be a port of itself");
    }

    #[test]
    fn a_vlan_on_itself_is_invalid() {
        let state = NetworkState {
            interfaces: vec![interface(
                "eth0",
                InterfaceKind::Vlan {
                    parent: "eth0".into(),
                    id: 7,
                },
                &[],
            )],
            ..NetworkState::default()
        };
        check_invalid(state, "eth0: a VLAN cannot be its own parent");
    }

    #[test]
    fn rollback_report_says_whether_the_old_state_is_back() {
        assert_eq!(
            RollbackReport::default().to_string(),
            "the previous state was restored"
        );
        let failed = RollbackReport {
            failures: vec!["add 192.0.2.10/24 to eth0: no interface named \"eth0\"".into()],
        };
        assert_eq!(
            failed.to_string(),
            "restoring the previous state failed: add 192.0.2.10/24 to eth0: no interface named \"eth0\""
        );
    }
}
