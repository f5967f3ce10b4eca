//! Test doubles: a recording system, a clock that moves only when read or slept on, and a
//! scripted signal source.

use std::cell::Cell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use anyhow::bail;
use mfv_config::discovery::{Discovery, DiscoveryParams, DiscoveryReport};
use mfv_config::schema::RemoteLogServer;
use mfv_host::clock::{RecordingTimeSync, TimeSync};
use mfv_host::hardware::ProbeSettings;
use mfv_host::network::handover::{HandoverError, NetworkRequest};
use mfv_host::network::{Network, RecordingNetwork};
use mfv_host::setup_adoption::AdoptionError;
use mfv_host::virtualization::Preparation;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::clock::Clock;
use crate::mounts::MountSpec;
use crate::services::ServiceSpec;
use crate::signals::SignalSource;
use crate::system::{ConsoleProgram, ExitStatus, Reaped, ShutdownAction, System};

/// The first pid the fake hands out; each spawn takes the next one.
pub const FIRST_PID: i32 = 100;

/// Records every call as a line of text; failures are switched on per action.
#[derive(Debug)]
pub struct FakeSystem {
    pub calls: Vec<String>,
    pub failing_mounts: Vec<&'static str>,
    pub hostname_fails: bool,
    pub hostname_panics: bool,
    pub cad_fails: bool,
    pub seed_fails: bool,
    pub kill_fails: bool,
    pub reboot_fails: bool,
    pub failing_unmounts: Vec<&'static str>,
    pub failing_remounts: Vec<&'static str>,
    /// How many spawns fail before they work again.
    pub spawn_failures: usize,
    pub spawn_panics: bool,
    /// Results of reap_children, in order; when empty: nothing exited, no children left.
    pub reaps: VecDeque<Reaped>,
    pub rescue_exit: ExitStatus,
    pub next_pid: i32,
    /// What coldplug reports on the console.
    pub coldplug_lines: Vec<String>,
    pub coldplug_fails: bool,
    pub hotplug_fails: bool,
    /// What config discovery returns; `None`: nothing found, no candidate, one pass.
    pub discovery: Option<DiscoveryReport>,
    /// The network work, recorded on its own.
    pub network: RecordingNetwork,
    pub time_sync: RecordingTimeSync,
    /// What preparing for VMs reports.
    pub virtualization: Preparation,
    /// Programs this image lacks.
    pub missing_programs: Vec<PathBuf>,
    /// Sockets that services have bound.
    pub answering_sockets: Vec<PathBuf>,
    /// Services that have said they are ready on their readiness pipe.
    pub notified: Vec<String>,
    /// The services the host daemon asked to restart.
    pub restart_requests: Vec<String>,
    /// Whether starting the log forwarding fails.
    pub forward_logs_fails: bool,
    /// The network requests the host daemon left, taken one per call.
    pub network_requests: VecDeque<NetworkRequest>,
    /// The last contents written to each runtime file.
    pub run_files: std::collections::BTreeMap<PathBuf, String>,
    /// What the host daemon left from first-boot setup's saves, taken one per signal.
    pub setups_saved: VecDeque<Result<PathBuf, AdoptionError>>,
    /// What config discovery returns before [`FakeSystem::discovery`], one per discovery.
    pub next_discoveries: VecDeque<DiscoveryReport>,
    /// Who holds the console setup, one answer per call (the last one stays); none: nobody.
    pub setup_holders: VecDeque<Option<String>>,
    /// The consoles the kernel writes to; empty: it cannot say.
    pub consoles: Vec<PathBuf>,
    /// Whether asking who holds the console setup fails.
    pub setup_lock_fails: bool,
    /// Runtime files whose writing fails.
    pub failing_run_files: Vec<PathBuf>,
}

impl Default for FakeSystem {
    fn default() -> FakeSystem {
        FakeSystem {
            calls: Vec::new(),
            failing_mounts: Vec::new(),
            hostname_fails: false,
            hostname_panics: false,
            cad_fails: false,
            seed_fails: false,
            kill_fails: false,
            reboot_fails: false,
            failing_unmounts: Vec::new(),
            failing_remounts: Vec::new(),
            spawn_failures: 0,
            spawn_panics: false,
            reaps: VecDeque::new(),
            rescue_exit: ExitStatus::Exited(0),
            next_pid: FIRST_PID,
            coldplug_lines: Vec::new(),
            coldplug_fails: false,
            hotplug_fails: false,
            discovery: None,
            network: RecordingNetwork::default(),
            time_sync: RecordingTimeSync::default(),
            virtualization: Preparation {
                acceleration: mfv_api::Virtualization::Tcg,
                lines: vec!["virtualization: TCG (software emulation, many times slower): the processor shows neither VT-x nor AMD-V".to_owned()],
            },
            missing_programs: Vec::new(),
            answering_sockets: Vec::new(),
            notified: Vec::new(),
            restart_requests: Vec::new(),
            forward_logs_fails: false,
            network_requests: VecDeque::new(),
            run_files: std::collections::BTreeMap::new(),
            setups_saved: VecDeque::new(),
            next_discoveries: VecDeque::new(),
            setup_holders: VecDeque::new(),
            consoles: Vec::new(),
            setup_lock_fails: false,
            failing_run_files: Vec::new(),
        }
    }
}

impl System for FakeSystem {
    fn mount(&mut self, mount: &MountSpec) -> anyhow::Result<()> {
        self.calls.push(format!(
            "mount {} {} {} {:?}",
            mount.fstype,
            mount.target,
            mount.data.unwrap_or("-"),
            mount.flags
        ));
        if self.failing_mounts.contains(&mount.target) {
            bail!(
                "mount {} on {}: EPERM: Operation not permitted",
                mount.fstype,
                mount.target
            );
        }
        Ok(())
    }

    fn unmount(&mut self, target: &Path) -> anyhow::Result<()> {
        self.calls.push(format!("unmount {}", target.display()));
        if self.failing_unmounts.iter().any(|t| Path::new(t) == target) {
            bail!(
                "unmount {}: EBUSY: Device or resource busy",
                target.display()
            );
        }
        Ok(())
    }

    fn remount_read_only(&mut self, target: &Path) -> anyhow::Result<()> {
        self.calls.push(format!("remount-ro {}", target.display()));
        if self.failing_remounts.iter().any(|t| Path::new(t) == target) {
            bail!(
                "remount {} read-only: EBUSY: Device or resource busy",
                target.display()
            );
        }
        Ok(())
    }

    fn set_hostname(&mut self, name: &str) -> anyhow::Result<()> {
        self.calls.push(format!("sethostname {name}"));
        if self.hostname_panics {
            panic!("hostname exploded");
        }
        if self.hostname_fails {
            bail!("sethostname {name}: EPERM: Operation not permitted");
        }
        Ok(())
    }

    fn seed_random_in_background(&mut self) -> anyhow::Result<()> {
        self.calls.push("seed-random".to_string());
        if self.seed_fails {
            bail!(
                "start the thread that waits for the random number generator: Resource \
                 temporarily unavailable (os error 11)"
            );
        }
        Ok(())
    }

    fn disable_ctrl_alt_del(&mut self) -> anyhow::Result<()> {
        self.calls.push("disable-cad".to_string());
        if self.cad_fails {
            bail!("reboot(RB_DISABLE_CAD): EPERM: Operation not permitted");
        }
        Ok(())
    }

    fn signal_all(&mut self, signal: Signal) -> anyhow::Result<()> {
        self.calls.push(format!("kill -1 {}", signal.as_str()));
        if self.kill_fails {
            bail!(
                "kill(-1, {}): EPERM: Operation not permitted",
                signal.as_str()
            );
        }
        Ok(())
    }

    fn sync(&mut self) {
        self.calls.push("sync".to_string());
    }

    fn reboot(&mut self, action: ShutdownAction) -> anyhow::Result<()> {
        self.calls.push(format!("reboot {action}"));
        if self.reboot_fails {
            bail!("reboot({action}): EPERM: Operation not permitted");
        }
        Ok(())
    }

    fn spawn_on_console(
        &mut self,
        program: &ConsoleProgram,
        console: &Path,
    ) -> anyhow::Result<Pid> {
        self.calls
            .push(format!("spawn {program} on {}", console.display()));
        if self.spawn_panics {
            panic!("spawn exploded");
        }
        if self.spawn_failures > 0 {
            self.spawn_failures -= 1;
            bail!(
                "start {}: ENOEXEC: Exec format error",
                program.path.display()
            );
        }
        let pid = Pid::from_raw(self.next_pid);
        self.next_pid += 1;
        Ok(pid)
    }

    fn write_run_file(&mut self, path: &Path, contents: &str) -> anyhow::Result<()> {
        self.calls.push(format!(
            "write {} ({} bytes)",
            path.display(),
            contents.len()
        ));
        if self.failing_run_files.iter().any(|failing| failing == path) {
            bail!("write {}: No space left on device", path.display());
        }
        self.run_files.insert(path.to_owned(), contents.to_owned());
        Ok(())
    }

    fn reap_children(&mut self) -> Reaped {
        self.calls.push("reap".to_string());
        self.reaps.pop_front().unwrap_or_default()
    }

    fn wait_child(&mut self, pid: Pid) -> anyhow::Result<ExitStatus> {
        self.calls.push(format!("wait {pid}"));
        Ok(self.rescue_exit)
    }

    fn coldplug(&mut self, probe: &ProbeSettings) -> anyhow::Result<Vec<String>> {
        self.calls.push(format!("coldplug {}", describe(probe)));
        if self.coldplug_fails {
            bail!(
                "cannot list the devices: {}/bus",
                probe.roots.sysfs.display()
            );
        }
        Ok(self.coldplug_lines.clone())
    }

    fn start_hotplug(&mut self, probe: &ProbeSettings) -> anyhow::Result<()> {
        self.calls
            .push(format!("start-hotplug {}", describe(probe)));
        if self.hotplug_fails {
            bail!("cannot open the uevent socket: EPERM: Operation not permitted");
        }
        Ok(())
    }

    fn discover_config(&mut self, params: &DiscoveryParams) -> DiscoveryReport {
        let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_string());
        self.calls.push(format!(
            "discover-config locator={} wait={} sysfs={} dev={} run={}",
            optional(params.locator.as_ref().map(ToString::to_string)),
            optional(params.wait.map(|wait| format!("{wait:?}"))),
            params.sysfs_root.display(),
            params.dev_root.display(),
            params.run_dir.display()
        ));
        if let Some(report) = self.next_discoveries.pop_front() {
            return report;
        }
        self.discovery.clone().unwrap_or(DiscoveryReport {
            outcome: Discovery::NotFound,
            requested: params.locator.clone(),
            candidates: Vec::new(),
            scan_issues: Vec::new(),
            passes: 1,
            elapsed: Duration::ZERO,
            settling: None,
        })
    }

    fn network(&mut self) -> &mut dyn Network {
        &mut self.network
    }

    fn time_sync(&mut self) -> &mut dyn TimeSync {
        &mut self.time_sync
    }

    fn prepare_virtualization(&mut self, probe: &ProbeSettings) -> Preparation {
        self.calls
            .push(format!("prepare-virtualization {}", describe(probe)));
        self.virtualization.clone()
    }

    fn program_exists(&mut self, path: &Path) -> bool {
        !self.missing_programs.iter().any(|missing| missing == path)
    }

    fn spawn_service(&mut self, spec: &ServiceSpec, run_dir: &Path) -> anyhow::Result<Pid> {
        let mut call = format!("spawn service {}: {}", spec.name, spec.program.display());
        for arg in &spec.args {
            call.push(' ');
            call.push_str(arg);
        }
        for address in &spec.listen {
            call.push_str(&format!(" [listening on {address}]"));
        }
        call.push_str(&format!(" (logs in {})", run_dir.display()));
        self.calls.push(call);
        if self.spawn_failures > 0 {
            self.spawn_failures -= 1;
            bail!(
                "start {}: ENOEXEC: Exec format error",
                spec.program.display()
            );
        }
        let pid = Pid::from_raw(self.next_pid);
        self.next_pid += 1;
        Ok(pid)
    }

    fn socket_exists(&mut self, path: &Path) -> bool {
        self.answering_sockets.iter().any(|socket| socket == path)
    }

    fn notified_ready(&mut self, name: &str) -> bool {
        self.notified.iter().any(|notified| notified == name)
    }

    fn remove_stale_socket(&mut self, path: &Path) -> anyhow::Result<()> {
        self.calls
            .push(format!("remove-stale-socket {}", path.display()));
        Ok(())
    }

    fn kill(&mut self, pid: Pid, signal: Signal) -> anyhow::Result<()> {
        self.calls.push(format!("kill {pid} {}", signal.as_str()));
        Ok(())
    }

    fn watch_power_button(&mut self, probe: &ProbeSettings) -> anyhow::Result<String> {
        self.calls
            .push(format!("watch-power-button {}", describe(probe)));
        Ok("power button: watching /dev/input/event0; a press shuts the host down".to_string())
    }

    fn open_boot_log(&mut self, run_dir: &Path) -> anyhow::Result<()> {
        self.calls
            .push(format!("open-boot-log {}", run_dir.display()));
        Ok(())
    }

    fn forward_logs(&mut self, server: &RemoteLogServer, hostname: &str) -> anyhow::Result<()> {
        self.calls.push(format!("forward-logs {server} {hostname}"));
        if self.forward_logs_fails {
            bail!("cannot start the thread that sends to {server}");
        }
        Ok(())
    }

    fn take_restart_requests(&mut self, run_dir: &Path) -> Vec<String> {
        self.calls
            .push(format!("take-restart-requests {}", run_dir.display()));
        std::mem::take(&mut self.restart_requests)
    }

    fn take_setup_saved(&mut self, run_dir: &Path) -> Option<Result<PathBuf, AdoptionError>> {
        self.calls
            .push(format!("take-setup-saved {}", run_dir.display()));
        self.setups_saved.pop_front()
    }

    fn take_network_request(
        &mut self,
        run_dir: &Path,
    ) -> Option<Result<NetworkRequest, HandoverError>> {
        self.calls
            .push(format!("take-network-request {}", run_dir.display()));
        self.network_requests.pop_front().map(Ok)
    }

    fn setup_lock_holder(&mut self, run_dir: &Path) -> anyhow::Result<Option<String>> {
        self.calls
            .push(format!("setup-lock-holder {}", run_dir.display()));
        if self.setup_lock_fails {
            bail!("open {}/setup.lock: Permission denied", run_dir.display());
        }
        Ok(if self.setup_holders.len() > 1 {
            self.setup_holders.pop_front().flatten()
        } else {
            self.setup_holders.front().cloned().flatten()
        })
    }

    fn active_consoles(&mut self, _: &Path, _: &Path) -> Vec<PathBuf> {
        self.consoles.clone()
    }
}

/// Probe settings in one line: `<modules dir> [<parameters with a dot>]`.
fn describe(probe: &ProbeSettings) -> String {
    let dotted: Vec<String> = probe
        .kernel_parameters
        .iter()
        .filter(|(key, _)| key.contains('.'))
        .map(|(key, value)| match value {
            Some(value) => format!("{key}={value}"),
            None => key.clone(),
        })
        .collect();
    format!("{} [{}]", probe.modules_dir.display(), dotted.join(" "))
}

/// A clock that advances by `step` on every read and by the slept time on `sleep`; clones
/// share the time.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Rc<Cell<Duration>>,
    step: Duration,
}

impl FakeClock {
    pub fn new(start: Duration, step: Duration) -> FakeClock {
        FakeClock {
            now: Rc::new(Cell::new(start)),
            step,
        }
    }

    pub fn advance(&self, by: Duration) {
        self.now.set(self.now.get() + by);
    }
}

impl Clock for FakeClock {
    fn uptime(&self) -> Duration {
        let now = self.now.get();
        self.now.set(now + self.step);
        now
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

/// Hands out a script of signals (`None`: the wait timed out, which advances the clock by the
/// timeout); fails when the script is used up, which ends the main loop in tests.
#[derive(Debug)]
pub struct ScriptedSignals {
    pub script: VecDeque<Option<Signal>>,
    pub clock: FakeClock,
    pub timeouts: Vec<Option<Duration>>,
}

impl ScriptedSignals {
    pub fn new(clock: &FakeClock, script: &[Option<Signal>]) -> ScriptedSignals {
        ScriptedSignals {
            script: script.iter().copied().collect(),
            clock: clock.clone(),
            timeouts: Vec::new(),
        }
    }
}

impl SignalSource for ScriptedSignals {
    fn next(&mut self, timeout: Option<Duration>) -> anyhow::Result<Option<Signal>> {
        self.timeouts.push(timeout);
        match self.script.pop_front() {
            Some(Some(signal)) => Ok(Some(signal)),
            Some(None) => {
                self.clock.advance(timeout.unwrap_or_default());
                Ok(None)
            }
            None => bail!("signal script used up"),
        }
    }
}
