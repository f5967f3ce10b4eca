//! PID 1's network after the boot: the network in effect, and a change to it applied
//! provisionally and kept only when confirmed in time.
//!
//! The network belongs to PID 1, which runs its DHCP clients and outlives everything else; the
//! host daemon, which may crash and be restarted, only hands changes over
//! ([`super::handover`]). So the state of a change lives here, in PID 1: [`LiveNetwork`] stops
//! the DHCP clients of the network in effect, applies the new section provisionally
//! ([`Network::apply_provisionally`]), starts the new section's DHCP clients, and then either
//! keeps it when confirmed before the deadline, or at the deadline (PID 1's main loop calls
//! [`LiveNetwork::expire`]) stops the new clients, restores the previous state and starts the
//! previous clients again. mfv-net's own timer is only a backstop, [`BACKSTOP_MARGIN`] after
//! the deadline, for the case where PID 1 never came round: the order (clients stopped before
//! the addresses are restored) is PID 1's.
//!
//! Lines it logs (PID 1 prints them after `mfv-init: `), N being the change's id:
//!
//! - `net: change N: CHANGE` for each change made (`add 192.0.2.10/24 to eth0`,
//!   `eth0: DHCP client stopped`, `eth0: DHCP client started`)
//! - `net: change N applied: confirm within S s`
//! - `net: change N confirmed`
//! - `net: change N rolled back: REASON` (`not confirmed within 60 s`, or why it failed)
//!
//! A confirmation of a change that is over is answered with how it ended (confirmed or
//! rolled back, remembered for the last [`FINISHED_KEPT`] changes), so a client that lost an
//! answer may ask again; an id never given out is [`ChangeError::Unknown`]. Applying never
//! saves the configuration: a client applies, confirms, then saves (`config_save`).

use std::collections::VecDeque;
use std::time::Duration;

use mfv_api::NetworkOutcome;
use mfv_config::schema::NetworkConfig;
use mfv_linux::error_chain;
use mfv_net::RollbackReport;
use serde::{Deserialize, Serialize};

use super::NetworkError;
use super::boot::{Network, dhcp_clients, start_dhcp};
use super::plan::{NetworkSteps, config_steps, replacing_state};

/// How long after a change's deadline mfv-net restores the previous state by itself, should
/// PID 1 not have rolled the change back by then.
pub const BACKSTOP_MARGIN: Duration = Duration::from_secs(30);

/// How many finished changes are remembered for late confirmations.
pub const FINISHED_KEPT: usize = 16;

/// A change waiting for its confirmation, as PID 1 publishes it for the host daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingChange {
    /// The change's id.
    pub apply_id: u64,
    /// The seconds it was given to be confirmed.
    pub confirm_within_secs: u32,
}

/// Why a change or a confirmation was refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// Another change waits for its confirmation.
    #[error(
        "network change {} is waiting for its confirmation (within {} s): confirm it or let \
         it roll back first",
        .0.apply_id,
        .0.confirm_within_secs
    )]
    Pending(PendingChange),
    /// No change has this id.
    #[error("no network change {apply_id} was made since the host booted")]
    Unknown {
        /// The id asked for.
        apply_id: u64,
    },
}

/// How a change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Finished {
    Confirmed,
    RolledBack(String),
}

/// A change applied provisionally.
#[derive(Debug, Clone)]
struct Pending {
    change: PendingChange,
    steps: NetworkSteps,
    section: NetworkConfig,
    /// On PID 1's clock.
    deadline: Duration,
}

/// The network in effect and the change waiting for its confirmation; see the module.
#[derive(Debug, Clone)]
pub struct LiveNetwork {
    in_effect: NetworkSteps,
    /// The `[network]` section the network in effect came from, when it came from one.
    in_effect_section: Option<NetworkConfig>,
    hostname: String,
    pending: Option<Pending>,
    last_id: u64,
    finished: VecDeque<(u64, Finished)>,
    kept: u64,
}

impl LiveNetwork {
    /// The network the boot set up (`steps`, from [`super::configure`]) on a host named
    /// `hostname`, which the DHCP clients send.
    pub fn new(in_effect: NetworkSteps, hostname: &str) -> LiveNetwork {
        LiveNetwork {
            in_effect,
            in_effect_section: None,
            hostname: hostname.to_owned(),
            pending: None,
            last_id: 0,
            finished: VecDeque::new(),
            kept: 0,
        }
    }

    /// The network in effect: the boot's, or the last change confirmed.
    pub fn in_effect(&self) -> &NetworkSteps {
        &self.in_effect
    }

    /// Says that the network in effect is the one `section` describes (the boot's came from
    /// the configuration's `[network]`).
    pub fn described_by(mut self, section: NetworkConfig) -> LiveNetwork {
        self.in_effect_section = Some(section);
        self
    }

    /// The `[network]` section of the network in effect: the one the boot's came from, or
    /// the last change confirmed; `None` when the network came from `mfv.net=` or none.
    pub fn in_effect_section(&self) -> Option<&NetworkConfig> {
        self.in_effect_section.as_ref()
    }

    /// How many changes were confirmed since the boot.
    pub fn kept_changes(&self) -> u64 {
        self.kept
    }

    /// The change waiting for its confirmation, if any.
    pub fn pending(&self) -> Option<&PendingChange> {
        self.pending.as_ref().map(|pending| &pending.change)
    }

    /// When the pending change is rolled back unless confirmed, on PID 1's clock.
    pub fn deadline(&self) -> Option<Duration> {
        self.pending.as_ref().map(|pending| pending.deadline)
    }

    /// Applies `section` provisionally at `now`, to be confirmed within
    /// `confirm_within_secs`: `Applied`, or `RolledBack` with the reason when it failed (the
    /// previous network is back then).
    pub fn apply(
        &mut self,
        network: &mut dyn Network,
        section: &NetworkConfig,
        confirm_within_secs: u32,
        now: Duration,
        log: &mut dyn FnMut(String),
    ) -> Result<NetworkOutcome, ChangeError> {
        if let Some(pending) = &self.pending {
            return Err(ChangeError::Pending(pending.change.clone()));
        }
        self.last_id += 1;
        let id = self.last_id;
        let next = config_steps(section);
        let within = Duration::from_secs(u64::from(confirm_within_secs));
        let mut changes = stop_clients(network, &self.in_effect.dhcp);
        let applied = network.apply_provisionally(
            &replacing_state(&self.in_effect, &next),
            within + BACKSTOP_MARGIN,
        );
        match applied {
            Ok(made) => changes.extend(made),
            Err(error) => {
                log_changes(id, &changes, log);
                let reason = error_chain(&error);
                self.start_clients(network, &self.in_effect.clone(), log);
                return Ok(self.rolled_back(id, reason, log));
            }
        }
        let pending = Pending {
            change: PendingChange {
                apply_id: id,
                confirm_within_secs,
            },
            steps: next,
            section: section.clone(),
            deadline: now + within,
        };
        let mut started = Vec::new();
        for (interface, client) in dhcp_clients(&pending.steps, &self.hostname) {
            if let Err(error) = start_dhcp(network, &interface, &client) {
                log_changes(id, &changes, log);
                return Ok(self.roll_back(
                    network,
                    &pending,
                    &started,
                    error_chain(&error),
                    None,
                    log,
                ));
            }
            changes.push(format!("{interface}: DHCP client started"));
            started.push(interface);
        }
        log_changes(id, &changes, log);
        log(format!(
            "net: change {id} applied: confirm within {confirm_within_secs} s"
        ));
        self.pending = Some(pending);
        Ok(NetworkOutcome::Applied {
            apply_id: id,
            confirm_within_secs,
            changes,
        })
    }

    /// Confirms change `apply_id` at `now`: `Confirmed` when it was pending and in time (it
    /// is the network in effect from now on), else how it ended.
    pub fn confirm(
        &mut self,
        network: &mut dyn Network,
        apply_id: u64,
        now: Duration,
        log: &mut dyn FnMut(String),
    ) -> Result<NetworkOutcome, ChangeError> {
        self.expire(network, now, log);
        match self.pending.take() {
            Some(pending) if pending.change.apply_id == apply_id => {
                match network.keep_provisional() {
                    Ok(()) => {
                        log(format!("net: change {apply_id} confirmed"));
                        self.in_effect = pending.steps;
                        self.in_effect_section = Some(pending.section);
                        self.kept += 1;
                        self.remember(apply_id, Finished::Confirmed);
                        Ok(NetworkOutcome::Confirmed)
                    }
                    // The backstop was first: finish its rollback.
                    Err(NetworkError::RolledBackAlready { rollback }) => Ok(self.roll_back(
                        network,
                        &pending,
                        &pending.steps.dhcp,
                        "the host restored the previous state by itself".to_owned(),
                        Some(Ok(rollback)),
                        log,
                    )),
                    Err(error) => Ok(self.roll_back(
                        network,
                        &pending,
                        &pending.steps.dhcp,
                        error_chain(&error),
                        None,
                        log,
                    )),
                }
            }
            other => {
                self.pending = other;
                self.ended(apply_id)
            }
        }
    }

    /// Rolls the pending change back when its deadline has passed at `now`.
    pub fn expire(
        &mut self,
        network: &mut dyn Network,
        now: Duration,
        log: &mut dyn FnMut(String),
    ) {
        let Some(pending) = self.pending.take_if(|pending| now >= pending.deadline) else {
            return;
        };
        let reason = format!(
            "not confirmed within {} s",
            pending.change.confirm_within_secs
        );
        self.roll_back(network, &pending, &pending.steps.dhcp, reason, None, log);
    }

    /// How change `apply_id`, which is not pending, ended.
    fn ended(&self, apply_id: u64) -> Result<NetworkOutcome, ChangeError> {
        match self.finished.iter().find(|(id, _)| *id == apply_id) {
            Some((_, Finished::Confirmed)) => Ok(NetworkOutcome::Confirmed),
            Some((_, Finished::RolledBack(reason))) => Ok(NetworkOutcome::RolledBack {
                reason: format!("change {apply_id} was rolled back: {reason}"),
            }),
            None => Err(ChangeError::Unknown { apply_id }),
        }
    }

    /// Rolls `pending` back because of `reason`: stops the DHCP clients it `started`,
    /// restores the previous state (unless the backstop did: `restored`), starts the
    /// previous network's DHCP clients again, and logs and remembers the outcome.
    fn roll_back(
        &mut self,
        network: &mut dyn Network,
        pending: &Pending,
        started: &[String],
        reason: String,
        restored: Option<Result<RollbackReport, NetworkError>>,
        log: &mut dyn FnMut(String),
    ) -> NetworkOutcome {
        let id = pending.change.apply_id;
        log_changes(id, &stop_clients(network, started), log);
        let rollback = restored.unwrap_or_else(|| network.roll_back_provisional());
        let reason = match rollback {
            Ok(report) if report.failures.is_empty() => reason,
            Ok(report) => format!("{reason}; {report}"),
            Err(error) => format!(
                "{reason}; cannot restore the previous state: {}",
                error_chain(&error)
            ),
        };
        self.start_clients(network, &self.in_effect.clone(), log);
        self.rolled_back(id, reason, log)
    }

    /// Starts the DHCP clients of `steps`, logging those that do not start.
    fn start_clients(
        &self,
        network: &mut dyn Network,
        steps: &NetworkSteps,
        log: &mut dyn FnMut(String),
    ) {
        for (interface, client) in dhcp_clients(steps, &self.hostname) {
            match start_dhcp(network, &interface, &client) {
                Ok(()) => log(format!("net: {interface}: DHCP client started")),
                Err(error) => log(format!("net: {}", error_chain(&error))),
            }
        }
    }

    fn rolled_back(
        &mut self,
        id: u64,
        reason: String,
        log: &mut dyn FnMut(String),
    ) -> NetworkOutcome {
        log(format!("net: change {id} rolled back: {reason}"));
        self.remember(id, Finished::RolledBack(reason.clone()));
        NetworkOutcome::RolledBack { reason }
    }

    fn remember(&mut self, id: u64, finished: Finished) {
        if self.finished.len() == FINISHED_KEPT {
            self.finished.pop_front();
        }
        self.finished.push_back((id, finished));
    }
}

/// Stops the DHCP clients of `interfaces`; returns a line for each stopped or failing.
fn stop_clients(network: &mut dyn Network, interfaces: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for interface in interfaces {
        match network.stop_dhcp(interface) {
            Ok(()) => lines.push(format!("{interface}: DHCP client stopped")),
            // It had stopped by itself (or never started): nothing to stop.
            Err(NetworkError::NoDhcpClient { .. }) => {}
            Err(error) => lines.push(format!(
                "{interface}: DHCP client not stopped: {}",
                error_chain(&error)
            )),
        }
    }
    lines
}

fn log_changes(id: u64, changes: &[String], log: &mut dyn FnMut(String)) {
    for change in changes {
        log(format!("net: change {id}: {change}"));
    }
}

#[cfg(test)]
mod tests {
    use mfv_config::schema::InterfaceMode;

    use super::*;
    use crate::network::RecordingNetwork;
    use crate::network::plan::tests::entry;

    const SECOND: Duration = Duration::from_secs(1);

    /// The boot's network: eth0 by DHCP.
    fn booted() -> (LiveNetwork, RecordingNetwork) {
        let mut boot = NetworkConfig::default();
        boot.interfaces.push(entry("eth0", InterfaceMode::Dhcp));
        let network = RecordingNetwork {
            dhcp_running: vec!["eth0".into()],
            apply_changes: vec!["add 192.0.2.10/24 to eth0".into()],
            ..RecordingNetwork::default()
        };
        (
            LiveNetwork::new(config_steps(&boot), "vmhost1.example.org"),
            network,
        )
    }

    /// eth0 static, eth1 by DHCP.
    fn section() -> NetworkConfig {
        let mut section = NetworkConfig::default();
        section
            .interfaces
            .push(mfv_config::schema::InterfaceConfig {
                addresses: vec!["192.0.2.10/24".parse().unwrap()],
                ..entry("eth0", InterfaceMode::Static)
            });
        section.interfaces.push(entry("eth1", InterfaceMode::Dhcp));
        section
    }

    /// Runs `step` with a log; returns its result and the lines.
    fn logged<T>(step: impl FnOnce(&mut dyn FnMut(String)) -> T) -> (T, Vec<String>) {
        let mut lines = Vec::new();
        let result = step(&mut |line| lines.push(line));
        (result, lines)
    }

    fn applied(live: &mut LiveNetwork, network: &mut RecordingNetwork) -> Vec<String> {
        let (outcome, lines) = logged(|log| live.apply(network, &section(), 5, 10 * SECOND, log));
        assert!(
            matches!(outcome, Ok(NetworkOutcome::Applied { .. })),
            "{outcome:?}"
        );
        network.calls.clear();
        lines
    }

    #[test]
    fn a_change_is_applied_then_confirmed_and_is_in_effect() {
        let (mut live, mut network) = booted();
        let (outcome, lines) =
            logged(|log| live.apply(&mut network, &section(), 5, 10 * SECOND, log));
        assert_eq!(
            outcome,
            Ok(NetworkOutcome::Applied {
                apply_id: 1,
                confirm_within_secs: 5,
                changes: vec![
                    "eth0: DHCP client stopped".into(),
                    "add 192.0.2.10/24 to eth0".into(),
                    "eth1: DHCP client started".into(),
                ],
            })
        );
        assert_eq!(
            lines,
            [
                "net: change 1: eth0: DHCP client stopped",
                "net: change 1: add 192.0.2.10/24 to eth0",
                "net: change 1: eth1: DHCP client started",
                "net: change 1 applied: confirm within 5 s",
            ]
        );
        assert_eq!(
            network.calls,
            [
                "stop dhcp eth0",
                "apply provisionally eth0 eth1 (backstop 35s)",
                "dhcp eth1 hostname vmhost1",
            ]
        );
        assert_eq!(
            live.pending(),
            Some(&PendingChange {
                apply_id: 1,
                confirm_within_secs: 5
            })
        );
        assert_eq!(live.deadline(), Some(15 * SECOND));
        // Another change waits for this one.
        let (refused, _) = logged(|log| live.apply(&mut network, &section(), 5, 11 * SECOND, log));
        assert_eq!(
            refused.unwrap_err().to_string(),
            "network change 1 is waiting for its confirmation (within 5 s): confirm it or let it \
             roll back first"
        );
        network.calls.clear();
        let (outcome, lines) = logged(|log| live.confirm(&mut network, 1, 14 * SECOND, log));
        assert_eq!(outcome, Ok(NetworkOutcome::Confirmed));
        assert_eq!(lines, ["net: change 1 confirmed"]);
        assert_eq!(network.calls, ["keep provisional"]);
        assert_eq!((live.pending(), live.deadline()), (None, None));
        // Asked again: the same answer; the next change replaces eth1's client.
        let (again, _) = logged(|log| live.confirm(&mut network, 1, 20 * SECOND, log));
        assert_eq!(again, Ok(NetworkOutcome::Confirmed));
        network.calls.clear();
        applied(&mut live, &mut network);
        let (_, _) = logged(|log| live.confirm(&mut network, 2, 11 * SECOND, log));
        assert_eq!(live.in_effect.dhcp, ["eth1"]);
    }

    #[test]
    fn a_change_not_confirmed_rolls_back_at_its_deadline() {
        let (mut live, mut network) = booted();
        applied(&mut live, &mut network);
        let (_, lines) = logged(|log| live.expire(&mut network, 14 * SECOND, log));
        assert!(lines.is_empty() && network.calls.is_empty());
        let (_, lines) = logged(|log| live.expire(&mut network, 15 * SECOND, log));
        assert_eq!(
            lines,
            [
                "net: change 1: eth1: DHCP client stopped",
                "net: eth0: DHCP client started",
                "net: change 1 rolled back: not confirmed within 5 s",
            ]
        );
        assert_eq!(
            network.calls,
            [
                "stop dhcp eth1",
                "roll back provisional",
                "dhcp eth0 hostname vmhost1"
            ]
        );
        assert_eq!(live.pending(), None);
        let (late, _) = logged(|log| live.confirm(&mut network, 1, 16 * SECOND, log));
        assert_eq!(
            late,
            Ok(NetworkOutcome::RolledBack {
                reason: "change 1 was rolled back: not confirmed within 5 s".into()
            })
        );
        let (unknown, _) = logged(|log| live.confirm(&mut network, 9, 16 * SECOND, log));
        assert_eq!(
            unknown.unwrap_err().to_string(),
            "no network change 9 was made since the host booted"
        );
    }

    #[test]
    fn a_confirmation_after_the_deadline_rolls_back_first() {
        let (mut live, mut network) = booted();
        applied(&mut live, &mut network);
        let (outcome, lines) = logged(|log| live.confirm(&mut network, 1, 20 * SECOND, log));
        assert_eq!(
            outcome,
            Ok(NetworkOutcome::RolledBack {
                reason: "change 1 was rolled back: not confirmed within 5 s".into()
            })
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("net: change 1 rolled back: not confirmed within 5 s")
        );
        assert!(!network.calls.contains(&"keep provisional".to_owned()));
    }

    #[test]
    fn a_failed_apply_rolls_back_at_once_and_restarts_the_clients() {
        let (mut live, mut network) = booted();
        network.provisional_fails = true;
        let (outcome, lines) = logged(|log| live.apply(&mut network, &section(), 5, SECOND, log));
        let reason = "cannot apply the network state: invalid network state: recorded failure";
        assert_eq!(
            outcome,
            Ok(NetworkOutcome::RolledBack {
                reason: reason.into()
            })
        );
        assert_eq!(
            lines,
            [
                "net: change 1: eth0: DHCP client stopped".to_owned(),
                "net: eth0: DHCP client started".to_owned(),
                format!("net: change 1 rolled back: {reason}"),
            ]
        );
        assert_eq!(live.pending(), None);
        // The next change gets the next id.
        network.provisional_fails = false;
        let (outcome, _) = logged(|log| live.apply(&mut network, &section(), 5, SECOND, log));
        assert!(matches!(
            outcome,
            Ok(NetworkOutcome::Applied { apply_id: 2, .. })
        ));
    }

    #[test]
    fn a_dhcp_client_that_does_not_start_rolls_the_change_back() {
        let (mut live, mut network) = booted();
        network.dhcp_fails = true;
        network.rollback_failures = vec!["add 192.0.2.99/24 to eth0: busy".into()];
        let (outcome, lines) = logged(|log| live.apply(&mut network, &section(), 5, SECOND, log));
        let reason = "cannot start the DHCP client on eth1: no interface named \"eth1\"; \
                      restoring the previous state failed: add 192.0.2.99/24 to eth0: busy";
        assert_eq!(
            outcome,
            Ok(NetworkOutcome::RolledBack {
                reason: reason.into()
            })
        );
        assert_eq!(
            lines,
            [
                "net: change 1: eth0: DHCP client stopped".to_owned(),
                "net: change 1: add 192.0.2.10/24 to eth0".to_owned(),
                "net: cannot start the DHCP client on eth0: no interface named \"eth0\"".to_owned(),
                format!("net: change 1 rolled back: {reason}"),
            ]
        );
        assert_eq!(
            network.calls,
            [
                "stop dhcp eth0",
                "apply provisionally eth0 eth1 (backstop 35s)",
                "dhcp eth1 hostname vmhost1",
                "roll back provisional",
                "dhcp eth0 hostname vmhost1",
            ]
        );
    }

    #[test]
    fn a_change_the_backstop_restored_is_finished_as_rolled_back() {
        let (mut live, mut network) = booted();
        applied(&mut live, &mut network);
        network.backstop_passed = true;
        let (outcome, _) = logged(|log| live.confirm(&mut network, 1, 11 * SECOND, log));
        assert_eq!(
            outcome,
            Ok(NetworkOutcome::RolledBack {
                reason: "the host restored the previous state by itself".into()
            })
        );
        assert_eq!(
            network.calls,
            [
                "keep provisional",
                "stop dhcp eth1",
                "dhcp eth0 hostname vmhost1"
            ]
        );
    }

    #[test]
    fn a_change_that_cannot_be_kept_or_restored_says_both() {
        let (mut live, mut network) = booted();
        applied(&mut live, &mut network);
        // The network lost track of it.
        network.provisional = false;
        let (outcome, _) = logged(|log| live.confirm(&mut network, 1, 11 * SECOND, log));
        assert_eq!(
            outcome,
            Ok(NetworkOutcome::RolledBack {
                reason: "no provisional network change is waiting; cannot restore the previous \
                         state: no provisional network change is waiting"
                    .into()
            })
        );
    }

    #[test]
    fn only_the_last_finished_changes_are_remembered() {
        let (mut live, mut network) = booted();
        for id in 1..=(FINISHED_KEPT as u64 + 1) {
            let (outcome, _) = logged(|log| live.apply(&mut network, &section(), 5, SECOND, log));
            assert!(
                matches!(outcome, Ok(NetworkOutcome::Applied { apply_id, .. }) if apply_id == id)
            );
            let (_, _) = logged(|log| live.confirm(&mut network, id, SECOND, log));
        }
        let (first, _) = logged(|log| live.confirm(&mut network, 1, SECOND, log));
        assert_eq!(first, Err(ChangeError::Unknown { apply_id: 1 }));
        let (second, _) = logged(|log| live.confirm(&mut network, 2, SECOND, log));
        assert_eq!(second, Ok(NetworkOutcome::Confirmed));
    }
}
