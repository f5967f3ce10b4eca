//! The privileged system actions PID 1 takes, behind one narrow trait: the real implementation
//! calls the kernel through nix; tests use the recording fake in `fake.rs`.

use std::fmt;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::Context;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::reboot::RebootMode;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use mfv_config::discovery::{DiscoveryParams, DiscoveryReport};
use mfv_config::mount::SysMounter;
use mfv_host::clock::{SntpTimeSync, TimeSync};
use mfv_host::hardware::ProbeSettings;
use mfv_host::network::{LineSink, NetlinkNetwork, Network};

use crate::clock::{BootClock, Clock};
use crate::console::Console;
use crate::hardware;
use crate::mounts::MountSpec;

/// How the machine is shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownAction {
    /// Power off (RB_POWER_OFF).
    Poweroff,
    /// Restart (RB_AUTOBOOT).
    Reboot,
    /// Stop without powering off (RB_HALT_SYSTEM).
    Halt,
}

impl fmt::Display for ShutdownAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShutdownAction::Poweroff => "poweroff",
            ShutdownAction::Reboot => "reboot",
            ShutdownAction::Halt => "halt",
        })
    }
}

impl From<mfv_config::cmdline::HaltAction> for ShutdownAction {
    fn from(action: mfv_config::cmdline::HaltAction) -> ShutdownAction {
        match action {
            mfv_config::cmdline::HaltAction::Poweroff => ShutdownAction::Poweroff,
            mfv_config::cmdline::HaltAction::Reboot => ShutdownAction::Reboot,
            mfv_config::cmdline::HaltAction::Halt => ShutdownAction::Halt,
        }
    }
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Killed(Signal),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exit status {code}"),
            ExitStatus::Killed(signal) => write!(f, "killed by {}", signal.as_str()),
        }
    }
}

/// A child that ended and was reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildExit {
    /// Its process id.
    pub pid: Pid,
    /// How it ended.
    pub status: ExitStatus,
}

/// What one round of reaping found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Children that had ended.
    pub exited: Vec<ChildExit>,
    /// Whether children are still running (false once waitpid says there are none).
    pub children_left: bool,
}

/// The system actions of PID 1.
pub trait System {
    /// Creates the mount point if missing, then mounts.
    fn mount(&mut self, mount: &MountSpec) -> anyhow::Result<()>;
    /// Unmounts `target`.
    fn unmount(&mut self, target: &Path) -> anyhow::Result<()>;
    /// Remounts `target` read-only.
    fn remount_read_only(&mut self, target: &Path) -> anyhow::Result<()>;
    /// Sets the host name.
    fn set_hostname(&mut self, name: &str) -> anyhow::Result<()>;
    /// Makes ctrl-alt-del send SIGINT to PID 1 instead of rebooting at once.
    fn disable_ctrl_alt_del(&mut self) -> anyhow::Result<()>;
    /// Sends `signal` to every process but PID 1 and the caller (kill(-1, signal)).
    fn signal_all(&mut self, signal: Signal) -> anyhow::Result<()>;
    /// Flushes file system buffers.
    fn sync(&mut self);
    /// Shuts the machine down; returns only if that failed (or in a fake).
    fn reboot(&mut self, action: ShutdownAction) -> anyhow::Result<()>;
    /// Starts `shell` in a new session with `console` as its controlling terminal and stdio.
    fn spawn_on_console(&mut self, program: &ConsoleProgram, console: &Path)
    -> anyhow::Result<Pid>;
    /// Replaces `path` (in the runtime directory) with `contents`, for the console screen.
    fn write_run_file(&mut self, path: &Path, contents: &str) -> anyhow::Result<()>;
    /// Reaps every ended child without blocking.
    fn reap_children(&mut self) -> Reaped;
    /// Waits for the child `pid` to end.
    fn wait_child(&mut self, pid: Pid) -> anyhow::Result<ExitStatus>;
    /// Loads the drivers of every device present (coldplug until settled) and reads the
    /// hardware inventory; returns the console lines that tell what was done and found.
    fn coldplug(&mut self, probe: &ProbeSettings) -> anyhow::Result<Vec<String>>;
    /// Starts loading the drivers of devices that appear from now on, in the background,
    /// logging each device added or removed on the console.
    fn start_hotplug(&mut self, probe: &ProbeSettings) -> anyhow::Result<()>;
    /// Looks for the configuration on the candidate volumes (each mounted read-only, then
    /// unmounted) and returns the outcome with its provenance report; never fails as a whole.
    fn discover_config(&mut self, params: &DiscoveryParams) -> DiscoveryReport;
    /// The network work (links, addresses, DHCP clients).
    fn network(&mut self) -> &mut dyn Network;
    /// The clock kept with SNTP.
    fn time_sync(&mut self) -> &mut dyn TimeSync;
}

/// A program PID 1 runs on the console: the console screen (`/init --console`), or a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleProgram {
    /// The executable.
    pub path: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl ConsoleProgram {
    /// `path` without arguments.
    pub fn bare(path: impl Into<PathBuf>) -> ConsoleProgram {
        ConsoleProgram {
            path: path.into(),
            args: Vec::new(),
        }
    }
}

impl std::fmt::Display for ConsoleProgram {
    /// The path, then the arguments, separated by spaces.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// The environment of the programs on the console.
pub const SHELL_ENV: [(&str, &str); 3] = [
    ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    ("HOME", "/root"),
    ("TERM", "linux"),
];

/// Where the resolver settings of the host go.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The real system, through nix.
#[derive(Debug)]
pub struct NixSystem {
    /// The uevent socket coldplug opened, for hotplug to take over without missing a device.
    uevents: Option<hardware::EarlyUevents>,
    /// rtnetlink and the DHCP clients.
    network: NetlinkNetwork,
    /// The SNTP client.
    time_sync: SntpTimeSync,
}

/// Console lines from work that runs in the background (DHCP and SNTP clients).
fn console_lines() -> LineSink {
    Arc::new(|line| Console::new(std::io::stdout()).line(BootClock.uptime(), line))
}

impl Default for NixSystem {
    fn default() -> NixSystem {
        NixSystem {
            uevents: None,
            network: NetlinkNetwork::new(RESOLV_CONF, console_lines()),
            time_sync: SntpTimeSync::new(console_lines()),
        }
    }
}

impl System for NixSystem {
    fn mount(&mut self, mount: &MountSpec) -> anyhow::Result<()> {
        std::fs::create_dir_all(mount.target)
            .with_context(|| format!("create mount point {}", mount.target))?;
        nix::mount::mount(
            Some(mount.source),
            mount.target,
            Some(mount.fstype),
            mount.flags,
            mount.data,
        )
        .with_context(|| format!("mount {} on {}", mount.fstype, mount.target))
    }

    fn unmount(&mut self, target: &Path) -> anyhow::Result<()> {
        nix::mount::umount2(target, MntFlags::empty())
            .with_context(|| format!("unmount {}", target.display()))
    }

    fn remount_read_only(&mut self, target: &Path) -> anyhow::Result<()> {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .with_context(|| format!("remount {} read-only", target.display()))
    }

    fn set_hostname(&mut self, name: &str) -> anyhow::Result<()> {
        nix::unistd::sethostname(name).with_context(|| format!("sethostname {name}"))
    }

    fn disable_ctrl_alt_del(&mut self) -> anyhow::Result<()> {
        nix::sys::reboot::set_cad_enabled(false).context("reboot(RB_DISABLE_CAD)")
    }

    fn signal_all(&mut self, signal: Signal) -> anyhow::Result<()> {
        match nix::sys::signal::kill(Pid::from_raw(-1), signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(error) => Err(error).with_context(|| format!("kill(-1, {})", signal.as_str())),
        }
    }

    fn sync(&mut self) {
        nix::unistd::sync();
    }

    fn reboot(&mut self, action: ShutdownAction) -> anyhow::Result<()> {
        let mode = match action {
            ShutdownAction::Poweroff => RebootMode::RB_POWER_OFF,
            ShutdownAction::Reboot => RebootMode::RB_AUTOBOOT,
            ShutdownAction::Halt => RebootMode::RB_HALT_SYSTEM,
        };
        match nix::sys::reboot::reboot(mode) {
            Ok(never) => match never {},
            Err(error) => Err(error).with_context(|| format!("reboot({mode:?})")),
        }
    }

    fn spawn_on_console(
        &mut self,
        program: &ConsoleProgram,
        console: &Path,
    ) -> anyhow::Result<Pid> {
        let terminal = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOCTTY)
            .open(console)
            .with_context(|| format!("open {}", console.display()))?;
        let stdio = |file: &std::fs::File| {
            file.try_clone()
                .with_context(|| format!("duplicate {}", console.display()))
        };
        let mut command = Command::new(&program.path);
        command
            .args(&program.args)
            .env_clear()
            .envs(SHELL_ENV)
            .current_dir("/")
            .stdin(stdio(&terminal)?)
            .stdout(stdio(&terminal)?)
            .stderr(terminal);
        // SAFETY: `become_session_leader` runs in the forked child before exec and calls only
        // setsid(2) and ioctl(2), which are async-signal-safe; it allocates nothing.
        unsafe {
            command.pre_exec(become_session_leader);
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {}", program.path.display()))?;
        let pid = i32::try_from(child.id()).context("child pid out of range")?;
        Ok(Pid::from_raw(pid))
    }

    fn write_run_file(&mut self, path: &Path, contents: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))
            .and_then(|()| {
                mfv_linux::atomic_file::replace_file(path, contents.as_bytes(), 0o644)
                    .map_err(std::io::Error::other)
            })
            .with_context(|| format!("write {}", path.display()))
    }

    fn reap_children(&mut self) -> Reaped {
        let mut reaped = Reaped::default();
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {
                    reaped.children_left = true;
                    return reaped;
                }
                Ok(status) => {
                    if let Some(exit) = child_exit(status) {
                        reaped.exited.push(exit);
                    }
                }
                Err(Errno::EINTR) => {}
                // ECHILD: no children at all. Nothing else can happen with these arguments.
                Err(_) => return reaped,
            }
        }
    }

    fn coldplug(&mut self, probe: &ProbeSettings) -> anyhow::Result<Vec<String>> {
        let (lines, uevents) = hardware::coldplug(probe)?;
        self.uevents = uevents;
        Ok(lines)
    }

    fn start_hotplug(&mut self, probe: &ProbeSettings) -> anyhow::Result<()> {
        hardware::start_hotplug(probe, self.uevents.take())
    }

    fn discover_config(&mut self, params: &DiscoveryParams) -> DiscoveryReport {
        mfv_config::discovery::discover(params, &SysMounter)
    }

    fn network(&mut self) -> &mut dyn Network {
        &mut self.network
    }

    fn time_sync(&mut self) -> &mut dyn TimeSync {
        &mut self.time_sync
    }

    fn wait_child(&mut self, pid: Pid) -> anyhow::Result<ExitStatus> {
        loop {
            match waitpid(pid, None) {
                Ok(status) => {
                    if let Some(exit) = child_exit(status) {
                        return Ok(exit.status);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(error) => return Err(error).with_context(|| format!("waitpid({pid})")),
            }
        }
    }
}

/// In the child before exec: a new session with stdin (the console) as controlling terminal.
fn become_session_leader() -> std::io::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: fd 0 is the console opened by the parent; TIOCSCTTY takes an int argument
    // (0: do not steal the terminal from another session).
    let result = unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) };
    // Without a controlling terminal the shell still works, only without job control: not a
    // reason to refuse the console.
    let _ = result;
    Ok(())
}

/// The end of a child, for the statuses that mean one.
fn child_exit(status: WaitStatus) -> Option<ChildExit> {
    match status {
        WaitStatus::Exited(pid, code) => Some(ChildExit {
            pid,
            status: ExitStatus::Exited(code),
        }),
        WaitStatus::Signaled(pid, signal, _) => Some(ChildExit {
            pid,
            status: ExitStatus::Killed(signal),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_actions_from_halt_actions() {
        use mfv_config::cmdline::HaltAction;
        for (halt, action, word) in [
            (HaltAction::Poweroff, ShutdownAction::Poweroff, "poweroff"),
            (HaltAction::Reboot, ShutdownAction::Reboot, "reboot"),
            (HaltAction::Halt, ShutdownAction::Halt, "halt"),
        ] {
            assert_eq!(ShutdownAction::from(halt), action);
            assert_eq!(action.to_string(), word);
        }
    }

    #[test]
    fn exit_statuses_display() {
        assert_eq!(ExitStatus::Exited(3).to_string(), "exit status 3");
        assert_eq!(
            ExitStatus::Killed(Signal::SIGKILL).to_string(),
            "killed by SIGKILL"
        );
    }

    #[test]
    fn child_exit_maps_wait_statuses() {
        let pid = Pid::from_raw(42);
        assert_eq!(
            child_exit(WaitStatus::Exited(pid, 1)),
            Some(ChildExit {
                pid,
                status: ExitStatus::Exited(1)
            })
        );
        assert_eq!(
            child_exit(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(ChildExit {
                pid,
                status: ExitStatus::Killed(Signal::SIGTERM)
            })
        );
        assert_eq!(child_exit(WaitStatus::StillAlive), None);
        assert_eq!(child_exit(WaitStatus::Continued(pid)), None);
    }

    #[test]
    fn spawn_shell_names_a_missing_console() {
        let dir = tempfile::tempdir().unwrap();
        let console = dir.path().join("console");
        let error = NixSystem::default()
            .spawn_on_console(&ConsoleProgram::bare("/bin/sh"), &console)
            .unwrap_err();
        assert_eq!(error.to_string(), format!("open {}", console.display()));
    }

    /// Held by every test that forks: `reap_children` takes any child of the test process,
    /// also the one std's `Command::spawn` forks for a program that cannot start and then
    /// reaps itself, so such tests must not run at the same time.
    static FORKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn spawn_shell_names_a_missing_shell() {
        let _forking = FORKING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let console = dir.path().join("console");
        std::fs::write(&console, "").unwrap();
        let shell = dir.path().join("sh");
        let error = NixSystem::default()
            .spawn_on_console(&ConsoleProgram::bare(&shell), &console)
            .unwrap_err();
        assert_eq!(error.to_string(), format!("start {}", shell.display()));
    }

    /// Starts real children and reaps whatever child the test process has: see [`FORKING`].
    #[test]
    fn spawned_shell_gets_console_stdio_and_environment_then_is_reaped() {
        use std::os::unix::fs::PermissionsExt;

        let _forking = FORKING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let console = dir.path().join("console");
        std::fs::write(&console, "").unwrap();
        let report = dir.path().join("report");
        let shell = dir.path().join("sh");
        std::fs::write(
            &shell,
            format!(
                "#!/bin/sh\necho \"$PATH $HOME $TERM $(pwd)\" > {}\necho on-console\n\
                 [ \"$(cut -d' ' -f6 /proc/$$/stat)\" = \"$$\" ] || exit 9\nexit 7\n",
                report.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o755)).unwrap();

        let mut system = NixSystem::default();
        let pid = system
            .spawn_on_console(&ConsoleProgram::bare(&shell), &console)
            .unwrap();
        assert_eq!(system.wait_child(pid).unwrap(), ExitStatus::Exited(7));
        assert_eq!(
            std::fs::read_to_string(&report).unwrap(),
            "/usr/sbin:/usr/bin:/sbin:/bin /root linux /\n"
        );
        assert_eq!(std::fs::read_to_string(&console).unwrap(), "on-console\n");

        let pid = system
            .spawn_on_console(&ConsoleProgram::bare(&shell), &console)
            .unwrap();
        let mut exits = Vec::new();
        for _ in 0..500 {
            let reaped = system.reap_children();
            exits.extend(reaped.exited);
            if !reaped.children_left {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            exits,
            [ChildExit {
                pid,
                status: ExitStatus::Exited(7)
            }]
        );
        assert_eq!(system.reap_children(), Reaped::default());
        let error = system.wait_child(pid).unwrap_err();
        assert_eq!(error.to_string(), format!("waitpid({pid})"));
    }
}
