//! The first boot without a usable configuration: where the network comes from until an
//! operator or the web's config mode sets the host up.
//!
//! The console setup screen ([`crate::console::setup`]) asks the operator for a network card
//! and its addresses; a host nobody stands at must still become reachable, so PID 1 runs a
//! timer ([`SetupFallback`]): when nobody chose a network within `mfv.setup_timeout` (60 s by
//! default), it takes DHCP on the first network card with link, looking again every
//! [`FALLBACK_RETRY`] while no card has one; the DHCP client itself asks until a lease arrives.
//! The network itself stays PID 1's ([`NetworkOwner`]): the console applies its choice through
//! the host daemon, as any network change, and the fallback through the same owner.
//!
//! Two files in PID 1's runtime directory join the two sides: [`SETUP_STATE_FILE`], where PID 1
//! publishes the [`SetupState`] the console shows (written only on a boot that needs setup),
//! and [`SETUP_LOCK_FILE`], an exclusive `flock` that one console takes while its operator
//! answers, so that two consoles cannot configure at once and the fallback waits for an
//! operator who started. The file holds the holder's name, for the other consoles to say who
//! it is.
//!
//! Lines PID 1 logs (after `mfv-init: `):
//!
//! - `setup: waiting for an operator at the console; without one, DHCP on the first network
//!   card with link in S s`
//! - `setup: nobody chose a network within S s: DHCP on IFACE (the first network card with
//!   link), until a lease arrives`
//! - `setup: nobody chose a network within S s and REASON: looking again every 5 s`
//! - `setup: the setup on CONSOLE is in use: the DHCP fallback waits`
//! - `setup: the network was chosen: no DHCP fallback` (or `...: the DHCP fallback stops
//!   being the setup's`)

use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mfv_config::schema::{InterfaceConfig, InterfaceMode, NetworkConfig};
use mfv_linux::regular_file::{ReadError, read_limited};
use serde::{Deserialize, Serialize};

use crate::network::Network;
use crate::network::handover::{HandoverFile, NetworkOwner};

/// The file in PID 1's runtime directory that holds the [`SetupState`].
pub const SETUP_STATE_FILE: &str = "setup.json";
/// The lock file in PID 1's runtime directory a console holds while its operator sets up.
pub const SETUP_LOCK_FILE: &str = "setup.lock";
/// How long the console waits for an operator without `mfv.setup_timeout=`.
pub const DEFAULT_SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the fallback looks again for a card with link, or for the operator to finish.
pub const FALLBACK_RETRY: Duration = Duration::from_secs(5);
/// How long one look for a card with link waits for carrier: PID 1 waits meanwhile.
pub const FALLBACK_CARRIER_WAIT: Duration = Duration::from_secs(2);
/// The largest setup state file read.
const MAX_STATE_BYTES: u64 = 64 * 1024;
/// The largest holder name kept in the lock file.
const MAX_HOLDER_BYTES: usize = 64;

/// Where the setup stands, as PID 1 publishes it for the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum SetupState {
    /// Waiting for an operator; without one, the DHCP fallback starts at `fallback_at_ms`.
    WaitingForOperator {
        /// `mfv.setup_timeout` in seconds.
        timeout_secs: u64,
        /// When the fallback starts, in milliseconds of CLOCK_BOOTTIME.
        fallback_at_ms: u64,
    },
    /// Nobody chose a network; the fallback could not start yet and looks again.
    FallbackRetrying {
        /// `mfv.setup_timeout` in seconds.
        timeout_secs: u64,
        /// Why it could not start (`no network card has link`).
        reason: String,
    },
    /// Nobody chose a network: DHCP runs on `interface` until a lease arrives (and after).
    FallbackDhcp {
        /// `mfv.setup_timeout` in seconds.
        timeout_secs: u64,
        /// The card the DHCP client runs on.
        interface: String,
    },
    /// An operator chose the network (on the console, or through the host daemon).
    NetworkChosen,
}

impl SetupState {
    /// The state file's content.
    pub fn to_json(&self) -> String {
        // Strings and numbers only: it always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The setup state or its lock could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The state file could not be read (not a regular file, too large, unreadable).
    #[error(transparent)]
    Read(ReadError),
    /// The state file is not a setup state.
    #[error("{} is not a setup state: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Another console holds the setup.
    #[error("the setup is in use on {holder}")]
    Held {
        /// Who holds it (`ttyS0`), as it wrote itself into the lock file.
        holder: String,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot use the setup lock {}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The setup state PID 1 published in `run_dir`; `None` when it published none (a host with a
/// configuration or `mfv.net=` needs no setup).
pub fn read_setup_state(run_dir: &Path) -> Result<Option<SetupState>, SetupError> {
    let bytes = match read_limited(run_dir, SETUP_STATE_FILE, MAX_STATE_BYTES) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing { .. }) => return Ok(None),
        Err(error) => return Err(SetupError::Read(error)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|error| SetupError::Invalid {
            path: run_dir.join(SETUP_STATE_FILE),
            problem: error.to_string(),
        })
}

/// The exclusive hold on the setup, released when dropped (or when its process ends).
#[derive(Debug)]
pub struct SetupLock {
    _held: nix::fcntl::Flock<std::fs::File>,
}

impl SetupLock {
    /// Takes the setup in `run_dir` for `holder` (a console's name, `ttyS0`), without waiting:
    /// [`SetupError::Held`] names who holds it.
    pub fn take(run_dir: &Path, holder: &str) -> Result<SetupLock, SetupError> {
        let path = run_dir.join(SETUP_LOCK_FILE);
        let lock_error = |source| SetupError::Lock {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&path)
            .map_err(lock_error)?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(mut held) => {
                let name: String = holder.chars().take(MAX_HOLDER_BYTES).collect();
                held.set_len(0)
                    .and_then(|()| held.rewind())
                    .and_then(|()| held.write_all(name.as_bytes()))
                    .map_err(lock_error)?;
                Ok(SetupLock { _held: held })
            }
            Err((returned, nix::errno::Errno::EWOULDBLOCK)) => {
                file = returned;
                let mut holder = String::new();
                // The holder wrote its name right after locking; a name not there yet (or
                // unreadable) is still a holder.
                let _ = (&mut file)
                    .take(MAX_HOLDER_BYTES as u64)
                    .read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another console".to_owned(),
                    name => mfv_linux::terminal_text::escape_line(name).into_owned(),
                };
                Err(SetupError::Held { holder })
            }
            Err((_, errno)) => Err(lock_error(errno.into())),
        }
    }

    /// Who holds the setup in `run_dir` now, if anyone: PID 1 asks before the fallback.
    pub fn holder(run_dir: &Path) -> Result<Option<String>, SetupError> {
        match SetupLock::take(run_dir, "PID 1 (the DHCP fallback)") {
            Ok(_released) => Ok(None),
            Err(SetupError::Held { holder }) => Ok(Some(holder)),
            Err(error) => Err(error),
        }
    }
}

/// PID 1's wait for an operator and the DHCP fallback after it; see the module.
#[derive(Debug, Clone)]
pub struct SetupFallback {
    timeout: Duration,
    state: SetupState,
    /// When [`SetupFallback::step`] has something to do next, on PID 1's clock.
    next: Option<Duration>,
    /// The holder the last step waited for, so that the wait is logged once per holder.
    waited_for: Option<String>,
}

impl SetupFallback {
    /// Starts waiting at `now` for an operator, `timeout` long; logs the line that says so.
    pub fn start(now: Duration, timeout: Duration, log: &mut dyn FnMut(String)) -> SetupFallback {
        let fallback_at = now + timeout;
        log(format!(
            "setup: waiting for an operator at the console; without one, DHCP on the first \
             network card with link in {} s",
            timeout.as_secs()
        ));
        SetupFallback {
            timeout,
            state: SetupState::WaitingForOperator {
                timeout_secs: timeout.as_secs(),
                fallback_at_ms: u64::try_from(fallback_at.as_millis()).unwrap_or(u64::MAX),
            },
            next: Some(fallback_at),
            waited_for: None,
        }
    }

    /// Where the setup stands.
    pub fn state(&self) -> &SetupState {
        &self.state
    }

    /// When [`SetupFallback::step`] should run next, on PID 1's clock; `None`: never again.
    pub fn wakeup(&self) -> Option<Duration> {
        self.next
    }

    /// A network change was kept (the console's, or one through the host daemon): the setup
    /// has its network and the fallback ends. Returns whether the state changed.
    pub fn network_chosen(&mut self, log: &mut dyn FnMut(String)) -> bool {
        if self.state == SetupState::NetworkChosen {
            return false;
        }
        log(match self.state {
            SetupState::FallbackDhcp { .. } => {
                "setup: the network was chosen: it replaces the DHCP fallback".to_owned()
            }
            _ => "setup: the network was chosen: no DHCP fallback".to_owned(),
        });
        self.state = SetupState::NetworkChosen;
        self.next = None;
        true
    }

    /// At `now`, once the wait is over: DHCP on the first card with link through `owner`,
    /// unless `holder` (who holds the setup lock, if anyone) is answering at a console.
    /// Returns the files to write (the network hand-over's pending file) and whether the
    /// state changed.
    pub fn step(
        &mut self,
        now: Duration,
        holder: Option<String>,
        owner: &mut NetworkOwner,
        run_dir: &Path,
        network: &mut dyn Network,
        log: &mut dyn FnMut(String),
    ) -> (Vec<HandoverFile>, bool) {
        if self.next.is_none_or(|next| now < next) {
            return (Vec::new(), false);
        }
        let timeout_secs = self.timeout.as_secs();
        if let Some(holder) = holder {
            if self.waited_for.as_ref() != Some(&holder) {
                log(format!(
                    "setup: the setup on {holder} is in use: the DHCP fallback waits"
                ));
                self.waited_for = Some(holder);
            }
            self.next = Some(now + FALLBACK_RETRY);
            return (Vec::new(), false);
        }
        self.waited_for = None;
        let attempt = network
            .first_nic_with_carrier(FALLBACK_CARRIER_WAIT)
            .map_err(|error| mfv_linux::error_chain(&error))
            .and_then(|interface| {
                let (files, kept) =
                    owner.keep(run_dir, &dhcp_section(&interface), network, now, log);
                kept.map(|()| (interface, files))
            });
        match attempt {
            Ok((interface, files)) => {
                log(format!(
                    "setup: nobody chose a network within {timeout_secs} s: DHCP on \
                     {interface} (the first network card with link), until a lease arrives"
                ));
                self.state = SetupState::FallbackDhcp {
                    timeout_secs,
                    interface,
                };
                self.next = None;
                (files, true)
            }
            Err(reason) => {
                self.next = Some(now + FALLBACK_RETRY);
                let retrying = SetupState::FallbackRetrying {
                    timeout_secs,
                    reason: reason.clone(),
                };
                if self.state == retrying {
                    return (Vec::new(), false);
                }
                log(format!(
                    "setup: nobody chose a network within {timeout_secs} s and {reason}: \
                     looking again every {} s",
                    FALLBACK_RETRY.as_secs()
                ));
                self.state = retrying;
                (Vec::new(), true)
            }
        }
    }
}

/// The `[network]` section of DHCP on `interface`.
pub fn dhcp_section(interface: &str) -> NetworkConfig {
    NetworkConfig {
        interfaces: vec![interface_entry(interface, InterfaceMode::Dhcp)],
        ..NetworkConfig::default()
    }
}

/// A `[[network.interfaces]]` entry for `name` in `mode`, nothing else set.
pub(crate) fn interface_entry(name: &str, mode: InterfaceMode) -> InterfaceConfig {
    InterfaceConfig {
        name: name.to_owned(),
        mode,
        addresses: Vec::new(),
        gateway: None,
        gateway6: None,
        mtu: None,
        vlan: None,
        bond: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::plan::NetworkSteps;
    use crate::network::{LiveNetwork, RecordingNetwork};

    const SECOND: Duration = Duration::from_secs(1);

    struct Fixture {
        dir: tempfile::TempDir,
        owner: NetworkOwner,
        network: RecordingNetwork,
        log: Vec<String>,
    }

    fn fixture(nic_with_carrier: Option<&str>) -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            owner: NetworkOwner::new(LiveNetwork::new(NetworkSteps::default(), "minifed")),
            network: RecordingNetwork {
                nic_with_carrier: nic_with_carrier.map(str::to_owned),
                ..RecordingNetwork::default()
            },
            log: Vec::new(),
        }
    }

    impl Fixture {
        fn step(
            &mut self,
            fallback: &mut SetupFallback,
            now: Duration,
            holder: Option<&str>,
        ) -> bool {
            let Fixture {
                dir,
                owner,
                network,
                log,
            } = self;
            let (files, changed) = fallback.step(
                now,
                holder.map(str::to_owned),
                owner,
                dir.path(),
                network,
                &mut |line| log.push(line),
            );
            for file in files {
                assert!(file.path.starts_with(dir.path()));
            }
            changed
        }
    }

    fn start(fixture: &mut Fixture, now: Duration, timeout: Duration) -> SetupFallback {
        SetupFallback::start(now, timeout, &mut |line| fixture.log.push(line))
    }

    #[test]
    fn nobody_at_the_console_means_dhcp_on_the_first_card_with_link_after_the_timeout() {
        let mut fixture = fixture(Some("eth1"));
        let mut fallback = start(&mut fixture, 4 * SECOND, 60 * SECOND);
        assert_eq!(
            fallback.state(),
            &SetupState::WaitingForOperator {
                timeout_secs: 60,
                fallback_at_ms: 64_000
            }
        );
        assert_eq!(fallback.wakeup(), Some(64 * SECOND));
        assert!(!fixture.step(&mut fallback, 63 * SECOND, None));
        assert!(fixture.network.calls.is_empty());
        assert!(fixture.step(&mut fallback, 64 * SECOND, None));
        assert_eq!(
            fallback.state(),
            &SetupState::FallbackDhcp {
                timeout_secs: 60,
                interface: "eth1".into()
            }
        );
        assert_eq!(fallback.wakeup(), None);
        assert_eq!(fixture.network.dhcp_running, ["eth1"]);
        assert!(
            fixture
                .network
                .calls
                .contains(&"keep provisional".to_owned()),
            "{:?}",
            fixture.network.calls
        );
        assert_eq!(fixture.owner.pending(), None);
        assert_eq!(fixture.owner.kept_changes(), 1);
        assert_eq!(
            fixture.log.first().unwrap(),
            "setup: waiting for an operator at the console; without one, DHCP on the first network card with link in 60 s"
        );
        assert_eq!(
            fixture.log.last().unwrap(),
            "setup: nobody chose a network within 60 s: DHCP on eth1 (the first network card \
             with link), until a lease arrives"
        );
        assert!(!fixture.step(&mut fallback, 200 * SECOND, None));
    }

    #[test]
    fn without_a_card_with_link_the_fallback_looks_again_until_one_has_it() {
        let mut fixture = fixture(None);
        let mut fallback = start(&mut fixture, Duration::ZERO, 5 * SECOND);
        assert!(fixture.step(&mut fallback, 5 * SECOND, None));
        assert!(matches!(
            fallback.state(),
            SetupState::FallbackRetrying { reason, .. } if reason.starts_with("no network card has carrier")
        ));
        assert_eq!(fallback.wakeup(), Some(10 * SECOND));
        // The same reason again is neither a change nor a new line.
        assert!(!fixture.step(&mut fallback, 10 * SECOND, None));
        let retries = fixture
            .log
            .iter()
            .filter(|line| line.contains("looking again every 5 s"))
            .count();
        assert_eq!(retries, 1, "{:?}", fixture.log);
        fixture.network.nic_with_carrier = Some("eth0".into());
        assert!(fixture.step(&mut fallback, 15 * SECOND, None));
        assert_eq!(fixture.network.dhcp_running, ["eth0"]);
    }

    #[test]
    fn an_operator_answering_at_a_console_holds_the_fallback_back() {
        let mut fixture = fixture(Some("eth0"));
        let mut fallback = start(&mut fixture, Duration::ZERO, 5 * SECOND);
        assert!(!fixture.step(&mut fallback, 5 * SECOND, Some("ttyS0")));
        assert!(!fixture.step(&mut fallback, 10 * SECOND, Some("ttyS0")));
        assert!(fixture.network.calls.is_empty());
        let waits = fixture
            .log
            .iter()
            .filter(|line| *line == "setup: the setup on ttyS0 is in use: the DHCP fallback waits")
            .count();
        assert_eq!(waits, 1, "{:?}", fixture.log);
        assert!(fallback.network_chosen(&mut |line| fixture.log.push(line)));
        assert_eq!(fallback.state(), &SetupState::NetworkChosen);
        assert_eq!(fallback.wakeup(), None);
        assert_eq!(
            fixture.log.last().unwrap(),
            "setup: the network was chosen: no DHCP fallback"
        );
        assert!(!fixture.step(&mut fallback, 60 * SECOND, None));
        assert!(!fallback.network_chosen(&mut |line| fixture.log.push(line)));
    }

    #[test]
    fn a_fallback_the_host_cannot_apply_is_retried() {
        let mut fixture = fixture(Some("eth0"));
        fixture.network.provisional_fails = true;
        let mut fallback = start(&mut fixture, Duration::ZERO, 5 * SECOND);
        assert!(fixture.step(&mut fallback, 5 * SECOND, None));
        assert!(matches!(
            fallback.state(),
            SetupState::FallbackRetrying { .. }
        ));
        assert_eq!(fallback.wakeup(), Some(10 * SECOND));
        fixture.network.provisional_fails = false;
        assert!(fixture.step(&mut fallback, 10 * SECOND, None));
        assert!(matches!(fallback.state(), SetupState::FallbackDhcp { .. }));
    }

    #[test]
    fn the_state_file_reads_back_and_an_odd_one_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_setup_state(dir.path()).unwrap().is_none());
        let state = SetupState::FallbackDhcp {
            timeout_secs: 60,
            interface: "eth0".into(),
        };
        std::fs::write(dir.path().join(SETUP_STATE_FILE), state.to_json()).unwrap();
        assert_eq!(read_setup_state(dir.path()).unwrap(), Some(state));
        std::fs::write(dir.path().join(SETUP_STATE_FILE), "{\"state\": \"odd\"}").unwrap();
        let error = read_setup_state(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("setup.json is not a setup state: unknown variant `odd`"),
            "{error}"
        );
    }

    #[test]
    fn one_console_at_a_time_holds_the_setup_and_the_others_learn_who() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(SetupLock::holder(dir.path()).unwrap(), None);
        let held = SetupLock::take(dir.path(), "ttyS0").unwrap();
        let refused = SetupLock::take(dir.path(), "tty1").unwrap_err();
        assert_eq!(refused.to_string(), "the setup is in use on ttyS0");
        assert_eq!(
            SetupLock::holder(dir.path()).unwrap().as_deref(),
            Some("ttyS0")
        );
        drop(held);
        assert_eq!(SetupLock::holder(dir.path()).unwrap(), None);
        let _again = SetupLock::take(dir.path(), "tty1").unwrap();
        assert!(
            SetupLock::take(dir.path(), "ttyS1")
                .unwrap_err()
                .to_string()
                .ends_with("tty1")
        );
    }

    #[test]
    fn a_lock_that_cannot_be_made_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = SetupLock::take(&missing, "ttyS0").unwrap_err().to_string();
        assert!(
            error.starts_with("cannot use the setup lock ") && error.contains("missing/setup.lock"),
            "{error}"
        );
    }
}
