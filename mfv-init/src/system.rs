//! The privileged system actions PID 1 takes, behind one narrow trait: the real implementation
//! calls the kernel through nix; tests use the recording fake in `fake.rs`.

use std::collections::HashMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::BufRead;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
use mfv_config::schema::RemoteLogServer;
use mfv_host::clock::{SntpTimeSync, TimeSync};
use mfv_host::hardware::{Drivers, ProbeSettings};
use mfv_host::network::handover::{HandoverError, NetworkRequest};
use mfv_host::network::{LineSink, NetlinkNetwork, Network};
use mfv_host::remote_log::HostLogForwarding;
use mfv_host::services::ServiceLog;
use mfv_host::setup_adoption::AdoptionError;
use mfv_host::virtualization::Preparation;

use crate::clock::{BootClock, Clock};
use crate::console::Console;
use crate::hardware;
use crate::mounts::MountSpec;
use crate::services::{FIRST_HANDED_OVER_FD, Readiness, ServiceSpec};

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
    /// Sets the host name, and names it in /etc/hosts so that it resolves without DNS.
    fn set_hostname(&mut self, name: &str) -> anyhow::Result<()>;
    /// Makes ctrl-alt-del send SIGINT to PID 1 instead of rebooting at once.
    fn disable_ctrl_alt_del(&mut self) -> anyhow::Result<()>;
    /// Starts a thread that waits at the lowest priority until the kernel's random number
    /// generator is seeded ([`mfv_linux::random`]), so that its wait for entropy overlaps the
    /// boot instead of holding up the web server's key.
    fn seed_random_in_background(&mut self) -> anyhow::Result<()>;
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
    /// Loads the KVM and VM network modules, opens /dev/kvm to QEMU's group, and tells
    /// whether VMs get KVM or TCG.
    fn prepare_virtualization(&mut self, probe: &ProbeSettings) -> Preparation;
    /// Whether `path` is a program this image has.
    fn program_exists(&mut self, path: &Path) -> bool;
    /// Starts a service in a session of its own, as its user, with its output going to its
    /// log in `run_dir`.
    fn spawn_service(&mut self, spec: &ServiceSpec, run_dir: &Path) -> anyhow::Result<Pid>;
    /// Whether a Unix socket is at `path`.
    fn socket_exists(&mut self, path: &Path) -> bool;
    /// Whether the last process started of the [`Readiness::Notify`] service `name` has
    /// written to its readiness pipe.
    fn notified_ready(&mut self, name: &str) -> bool;
    /// Removes the socket a previous process of a service left at `path`, if any.
    fn remove_stale_socket(&mut self, path: &Path) -> anyhow::Result<()>;
    /// Sends `signal` to the process `pid`.
    fn kill(&mut self, pid: Pid, signal: Signal) -> anyhow::Result<()>;
    /// The services the host daemon asked to restart, taking the requests from `run_dir`.
    fn take_restart_requests(&mut self, run_dir: &Path) -> Vec<String>;
    /// The network request the host daemon left in `run_dir`, taken away; `None` when there
    /// is none.
    fn take_network_request(
        &mut self,
        run_dir: &Path,
    ) -> Option<Result<NetworkRequest, HandoverError>>;
    /// The volume first-boot setup saved to, as the host daemon left it in `run_dir`, taken
    /// away; `None` when there is none.
    fn take_setup_saved(&mut self, run_dir: &Path) -> Option<Result<PathBuf, AdoptionError>>;
    /// Who holds the console setup in `run_dir` (a console's name), if anyone.
    fn setup_lock_holder(&mut self, run_dir: &Path) -> anyhow::Result<Option<String>>;
    /// The device of every console the kernel writes to (`/dev/tty1`, `/dev/ttyS0`), from
    /// `<sysfs>/class/tty/console/active`; empty when it cannot say.
    fn active_consoles(&mut self, sysfs_root: &Path, dev_dir: &Path) -> Vec<PathBuf>;
    /// Sends the console lines so far and from now on to the boot log in `run_dir`.
    fn open_boot_log(&mut self, run_dir: &Path) -> anyhow::Result<()>;
    /// Copies the console lines so far and from now on, and every service's output, to the
    /// syslog server `server` as the host `hostname`, without waiting for it.
    fn forward_logs(&mut self, server: &RemoteLogServer, hostname: &str) -> anyhow::Result<()>;
    /// Watches the power buttons: a press sends SIGPWR to this process. Returns the console
    /// line saying what is watched.
    fn watch_power_button(&mut self, probe: &ProbeSettings) -> anyhow::Result<String>;
}

/// A program PID 1 runs on the console: the console screen (`mfv-init --console`), or a shell.
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

/// Where names resolve without DNS.
const HOSTS_FILE: &str = "/etc/hosts";

/// /etc/hosts for the host `name`: localhost, and the host's own name (and its first label,
/// for a fully qualified name) on 127.0.1.1 as Debian does, so that libvirtd and QEMU resolve
/// it before any DNS server is known.
fn hosts_file(name: &str) -> String {
    let short = name.split('.').next().unwrap_or(name);
    let names = if short == name {
        name.to_owned()
    } else {
        format!("{name} {short}")
    };
    format!("127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{names}\n")
}

/// Where the resolver settings of the host go.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The real system, through nix.
#[derive(Debug)]
pub struct NixSystem {
    /// The uevent socket coldplug opened, for hotplug to take over without missing a device.
    uevents: Option<hardware::EarlyUevents>,
    /// The module index coldplug read, for hotplug, the power button and the preparation for
    /// VMs.
    drivers: Option<Arc<Drivers>>,
    /// rtnetlink and the DHCP clients.
    network: NetlinkNetwork,
    /// The SNTP client.
    time_sync: SntpTimeSync,
    /// The read ends of the readiness pipes of [`Readiness::Notify`] services, by name, until
    /// each says it is ready.
    readiness_pipes: HashMap<String, std::fs::File>,
}

/// Console lines from work that runs in the background (DHCP and SNTP clients).
fn console_lines() -> LineSink {
    Arc::new(|line| Console::new(std::io::stdout()).line(BootClock.uptime(), line))
}

impl Default for NixSystem {
    fn default() -> NixSystem {
        NixSystem {
            uevents: None,
            drivers: None,
            network: NetlinkNetwork::new(RESOLV_CONF, console_lines()),
            time_sync: SntpTimeSync::new(console_lines()),
            readiness_pipes: HashMap::new(),
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
        nix::unistd::sethostname(name).with_context(|| format!("sethostname {name}"))?;
        mfv_linux::atomic_file::replace_file(
            Path::new(HOSTS_FILE),
            hosts_file(name).as_bytes(),
            0o644,
        )
        .map_err(anyhow::Error::from)
        .with_context(|| format!("write {HOSTS_FILE}"))
    }

    fn disable_ctrl_alt_del(&mut self) -> anyhow::Result<()> {
        nix::sys::reboot::set_cad_enabled(false).context("reboot(RB_DISABLE_CAD)")
    }

    fn seed_random_in_background(&mut self) -> anyhow::Result<()> {
        // Its error, if any, would be the host daemon's too, and it says so there.
        std::thread::Builder::new()
            .name("seed random".to_owned())
            .spawn(mfv_linux::random::wait_until_seeded_at_lowest_priority)
            .context("start the thread that waits for the random number generator")?;
        Ok(())
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
        // The last lines (this shutdown's) are worth a moment on their way to a log server.
        crate::log_forwarding::flush_at_shutdown();
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
        // sigprocmask(2), setsid(2) and ioctl(2), which are async-signal-safe; it allocates
        // nothing.
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
        let coldplugged = hardware::coldplug(probe)?;
        self.uevents = coldplugged.uevents;
        self.drivers = Some(coldplugged.drivers);
        Ok(coldplugged.lines)
    }

    fn start_hotplug(&mut self, probe: &ProbeSettings) -> anyhow::Result<()> {
        let drivers = Drivers::shared_or_open(probe, self.drivers.as_ref())?;
        hardware::start_hotplug(probe, self.uevents.take(), drivers)
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

    fn prepare_virtualization(&mut self, probe: &ProbeSettings) -> Preparation {
        let kvm_group = nix::unistd::Group::from_name(KVM_GROUP)
            .ok()
            .flatten()
            .map(|group| group.gid.as_raw());
        mfv_host::virtualization::prepare(probe, self.drivers.as_ref(), kvm_group)
    }

    fn program_exists(&mut self, path: &Path) -> bool {
        path.is_file()
    }

    fn spawn_service(&mut self, spec: &ServiceSpec, run_dir: &Path) -> anyhow::Result<Pid> {
        let identity = spec.user.as_deref().map(Identity::of).transpose()?;
        let listeners = spec
            .listen
            .iter()
            .map(|address| bind_listener(*address))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut log = ServiceLog::open(run_dir, &spec.name)?;
        let readiness = match spec.ready {
            Readiness::Notify => Some(readiness_pipe()?),
            Readiness::Running | Readiness::Socket(_) => None,
        };
        // Close-on-exec: no other child inherits the pipe and keeps it open.
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("pipe for the service's output")?;
        let reader = std::fs::File::from(reader);
        let writer = std::fs::File::from(writer);
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(SERVICE_ENV)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(
                writer
                    .try_clone()
                    .context("pipe for the service's output")?,
            )
            .stderr(writer);
        let handed_over: Vec<RawFd> = listeners
            .iter()
            .chain(readiness.as_ref().map(|(_, writer)| writer))
            .map(AsRawFd::as_raw_fd)
            .collect();
        // SAFETY: the closure runs in the forked child before exec and calls only
        // sigprocmask(2), setsid(2), dup2(2), setgroups(2), setgid(2) and setuid(2), which
        // are async-signal-safe; the group list and the descriptor list were allocated
        // before the fork.
        unsafe {
            command.pre_exec(move || {
                unblock_signals()?;
                nix::unistd::setsid()?;
                hand_over(&handed_over)?;
                if let Some(identity) = &identity {
                    identity.assume()?;
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {}", spec.program.display()))?;
        // The pipe's write ends go with the command: the reader sees the end of the output
        // when the service's last process closes its copy. The listeners and the readiness
        // pipe's write end are the service's now.
        drop(command);
        drop(listeners);
        match readiness {
            Some((reader, _)) => {
                self.readiness_pipes.insert(spec.name.clone(), reader);
            }
            None => {
                self.readiness_pipes.remove(&spec.name);
            }
        }
        let pid = i32::try_from(child.id()).context("child pid out of range")?;
        let (name, id) = (spec.name.clone(), child.id());
        std::thread::Builder::new()
            .name(format!("log {}", spec.name))
            .spawn(move || {
                for line in std::io::BufReader::new(reader).split(b'\n') {
                    let Ok(line) = line else { break };
                    let stamp = u64::try_from(BootClock.uptime().as_micros()).unwrap_or(u64::MAX);
                    let text = String::from_utf8_lossy(&line);
                    // A full /run loses log lines, never the service.
                    let _ = log.append(stamp, &text);
                    crate::log_forwarding::service_line(&name, id, &text);
                }
            })
            .context("start the service's log thread")?;
        Ok(Pid::from_raw(pid))
    }

    fn socket_exists(&mut self, path: &Path) -> bool {
        use std::os::unix::fs::FileTypeExt;
        path.symlink_metadata()
            .is_ok_and(|metadata| metadata.file_type().is_socket())
    }

    fn notified_ready(&mut self, name: &str) -> bool {
        let Some(reader) = self.readiness_pipes.get_mut(name) else {
            return false;
        };
        let mut byte = [0u8; 1];
        // Non-blocking: nothing written yet is WouldBlock; the end without a word (the
        // service closed it or exited) is 0 bytes.
        let ready = matches!(std::io::Read::read(reader, &mut byte), Ok(1));
        if ready {
            self.readiness_pipes.remove(name);
        }
        ready
    }

    fn remove_stale_socket(&mut self, path: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::FileTypeExt;
        match path.symlink_metadata() {
            Ok(metadata) if metadata.file_type().is_socket() => std::fs::remove_file(path)
                .with_context(|| format!("remove the stale socket {}", path.display())),
            Ok(_) => anyhow::bail!("{} is there and is not a socket", path.display()),
            Err(_) => Ok(()),
        }
    }

    fn kill(&mut self, pid: Pid, signal: Signal) -> anyhow::Result<()> {
        nix::sys::signal::kill(pid, signal)
            .with_context(|| format!("kill({pid}, {})", signal.as_str()))
    }

    fn take_restart_requests(&mut self, run_dir: &Path) -> Vec<String> {
        mfv_host::daemon::take_restart_requests(run_dir)
    }

    fn take_setup_saved(&mut self, run_dir: &Path) -> Option<Result<PathBuf, AdoptionError>> {
        mfv_host::setup_adoption::take(run_dir)
    }

    fn take_network_request(
        &mut self,
        run_dir: &Path,
    ) -> Option<Result<NetworkRequest, HandoverError>> {
        mfv_host::network::handover::take_request(run_dir)
    }

    fn setup_lock_holder(&mut self, run_dir: &Path) -> anyhow::Result<Option<String>> {
        Ok(mfv_host::setup::SetupLock::holder(run_dir)?)
    }

    fn active_consoles(&mut self, sysfs_root: &Path, dev_dir: &Path) -> Vec<PathBuf> {
        std::fs::read_to_string(sysfs_root.join("class/tty/console/active"))
            .map(|active| console_devices(&active, dev_dir))
            .unwrap_or_default()
    }

    fn open_boot_log(&mut self, run_dir: &Path) -> anyhow::Result<()> {
        crate::boot_log::open(run_dir).context("the boot log")
    }

    fn forward_logs(&mut self, server: &RemoteLogServer, hostname: &str) -> anyhow::Result<()> {
        let forwarding = HostLogForwarding::start(server.clone(), hostname, console_lines())?;
        crate::log_forwarding::start(forwarding)
    }

    fn watch_power_button(&mut self, probe: &ProbeSettings) -> anyhow::Result<String> {
        crate::power_button::watch(probe, self.drivers.as_ref(), || {
            // Nothing to tell if it fails: this process is PID 1 and cannot be gone.
            let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGPWR);
        })
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

/// The group /dev/kvm is opened to: QEMU's group in the image's /etc/group.
const KVM_GROUP: &str = "kvm";

/// The environment of the services.
const SERVICE_ENV: [(&str, &str); 2] = [("PATH", "/usr/sbin:/usr/bin"), ("HOME", "/")];

/// The user, group and supplementary groups a service runs as, looked up before the fork.
#[derive(Debug)]
struct Identity {
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
    groups: Vec<nix::unistd::Gid>,
}

impl Identity {
    /// The identity of the user `name` in /etc/passwd and /etc/group.
    fn of(name: &str) -> anyhow::Result<Identity> {
        let user = nix::unistd::User::from_name(name)
            .with_context(|| format!("look up user {name}"))?
            .with_context(|| format!("user {name} is not in /etc/passwd"))?;
        let c_name = std::ffi::CString::new(name).context("a user name with a NUL byte")?;
        let groups = nix::unistd::getgrouplist(&c_name, user.gid)
            .with_context(|| format!("look up the groups of {name}"))?;
        Ok(Identity {
            uid: user.uid,
            gid: user.gid,
            groups,
        })
    }

    /// In the child before exec: groups first, the user last (after setuid the others are
    /// no longer allowed).
    fn assume(&self) -> std::io::Result<()> {
        nix::unistd::setgroups(&self.groups)?;
        nix::unistd::setgid(self.gid)?;
        nix::unistd::setuid(self.uid)?;
        Ok(())
    }
}

/// In the child before exec: no signal blocked. PID 1 blocks the signals it reads from its
/// signalfd, and the mask survives fork and exec: a service would never see SIGTERM, nor
/// libvirtd SIGCHLD.
fn unblock_signals() -> std::io::Result<()> {
    nix::sys::signal::SigSet::empty().thread_set_mask()?;
    Ok(())
}

/// In the child before exec: no signal blocked, and a new session with stdin (the console)
/// as controlling terminal.
fn become_session_leader() -> std::io::Result<()> {
    unblock_signals()?;
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

/// A TCP listener on `address`, above the descriptors a service is handed
/// ([`above_handed_over`]). An IPv6 wildcard falls back to the IPv4 one on a kernel without
/// IPv6.
fn bind_listener(address: SocketAddr) -> anyhow::Result<OwnedFd> {
    let bound = std::net::TcpListener::bind(address).or_else(|error| match address {
        SocketAddr::V6(v6)
            if v6.ip().is_unspecified()
                && error.raw_os_error() == Some(nix::libc::EAFNOSUPPORT) =>
        {
            std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, v6.port()))
        }
        _ => Err(error),
    });
    let listener = bound.with_context(|| format!("listen on {address}"))?;
    above_handed_over(&listener, &format!("the listener on {address}"))
}

/// A copy of `fd` at descriptor 10 or above (close-on-exec), above those a service is handed
/// (from [`FIRST_HANDED_OVER_FD`] on), so that handing one over never overwrites another;
/// `what` names it in the error.
fn above_handed_over(fd: impl AsFd, what: &str) -> anyhow::Result<OwnedFd> {
    let high = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
        .with_context(|| format!("move {what}"))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// A pipe for a service to say it is ready: the read end non-blocking, the write end above
/// the descriptors a service is handed ([`above_handed_over`]). Both close on exec; the write
/// end is handed over.
fn readiness_pipe() -> anyhow::Result<(std::fs::File, OwnedFd)> {
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .context("pipe for the service's readiness")?;
    nix::fcntl::fcntl(
        &reader,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .context("make the readiness pipe's read end non-blocking")?;
    let writer = above_handed_over(&writer, "the readiness pipe")?;
    Ok((std::fs::File::from(reader), writer))
}

/// In a service's child: `descriptors` (its listeners, then its readiness pipe) become
/// descriptors 3, 4, ... (without close-on-exec).
fn hand_over(descriptors: &[RawFd]) -> std::io::Result<()> {
    for (target, source) in (FIRST_HANDED_OVER_FD..).zip(descriptors) {
        // SAFETY: dup2 on descriptors this process holds; the sources are all above the
        // targets (above_handed_over), so none is overwritten before it is handed over.
        if unsafe { nix::libc::dup2(*source, target) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The devices of the consoles `<sysfs>/class/tty/console/active` lists (`tty0 ttyS0`), below
/// `dev_dir`. `tty0` is the virtual terminal in front, which is no terminal of its own to
/// run a program on: the screen takes `tty1`, the one shown at boot.
pub fn console_devices(active: &str, dev_dir: &Path) -> Vec<PathBuf> {
    let mut devices: Vec<PathBuf> = Vec::new();
    for name in active.split_whitespace() {
        let name = if name == "tty0" { "tty1" } else { name };
        // Only names the kernel gives terminals: nothing that walks out of `dev_dir`.
        if name.contains('/') || name.starts_with('.') {
            continue;
        }
        let device = dev_dir.join(name);
        if !devices.contains(&device) {
            devices.push(device);
        }
    }
    devices
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
    fn the_host_name_resolves_from_etc_hosts() {
        assert_eq!(
            hosts_file("vmhost1"),
            "127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\tvmhost1\n"
        );
        assert!(
            hosts_file("vmhost1.example.org").ends_with("127.0.1.1\tvmhost1.example.org vmhost1\n")
        );
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
    fn service(name: &str, script: &str, user: Option<&str>) -> ServiceSpec {
        ServiceSpec {
            name: name.to_string(),
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".to_string(), script.to_string()],
            user: user.map(str::to_string),
            ready: Readiness::Running,
            listen: Vec::new(),
            after: Vec::new(),
            yield_to: Vec::new(),
            stop_grace: std::time::Duration::from_secs(1),
        }
    }

    /// The log lines of `name` in `run_dir` once the service's output has ended.
    fn log_texts(run_dir: &Path, name: &str, count: usize) -> Vec<String> {
        let source = mfv_api::LogSource::Service {
            name: name.to_string(),
        };
        for _ in 0..500 {
            let lines = mfv_host::services::recent_lines(run_dir, &source, 100).unwrap();
            if lines.len() >= count {
                return lines.into_iter().map(|line| line.text).collect();
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{name} did not log {count} lines");
    }

    #[test]
    fn a_notifying_service_is_ready_once_it_writes_to_the_descriptor_after_its_listeners() {
        let _forking = FORKING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let mut system = NixSystem::default();
        // One listener on descriptor 3: the pipe is 4. The service says it is ready once the
        // file `go` is there.
        let go = dir.path().join("go");
        let script = format!(
            "while [ ! -e {go} ]; do sleep 0.01; done; echo ready >&4; exec sleep 5",
            go = go.display()
        );
        let spec = ServiceSpec {
            ready: Readiness::Notify,
            listen: vec![SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0))],
            ..service("notifier", &script, None)
        };
        let pid = system.spawn_service(&spec, dir.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!system.notified_ready("notifier"));
        std::fs::write(&go, "").unwrap();
        let mut ready = false;
        for _ in 0..500 {
            ready = system.notified_ready("notifier");
            if ready {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(ready);
        nix::sys::signal::kill(pid, Signal::SIGKILL).unwrap();
        system.wait_child(pid).unwrap();
        // One that ends without a word never is.
        let silent = ServiceSpec {
            ready: Readiness::Notify,
            ..service("silent", "exit 0", None)
        };
        let pid = system.spawn_service(&silent, dir.path()).unwrap();
        system.wait_child(pid).unwrap();
        assert!(!system.notified_ready("silent"));
    }

    #[test]
    fn a_service_runs_in_its_own_session_with_its_output_in_its_log() {
        let _forking = FORKING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let mut system = NixSystem::default();
        let script = "echo \"out $PATH $(pwd)\"; echo err >&2; \
                      [ \"$(cut -d' ' -f6 /proc/$$/stat)\" = \"$$\" ] && echo session; \
                      read line || echo no-input; exec grep SigBlk /proc/self/status";
        // Blocked here as PID 1 blocks it; the service must not inherit that.
        let mut blocked = nix::sys::signal::SigSet::empty();
        blocked.add(Signal::SIGTERM);
        blocked.thread_block().unwrap();
        let spawned = system.spawn_service(&service("demo", script, None), dir.path());
        blocked.thread_unblock().unwrap();
        let pid = spawned.unwrap();
        assert_eq!(system.wait_child(pid).unwrap(), ExitStatus::Exited(0));
        assert_eq!(
            log_texts(dir.path(), "demo", 5),
            [
                "out /usr/sbin:/usr/bin /",
                "err",
                "session",
                "no-input",
                "SigBlk:\t0000000000000000"
            ]
        );
    }

    #[test]
    fn a_service_runs_as_its_user_with_that_users_groups() {
        let _forking = FORKING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let mut system = NixSystem::default();
        let pid = system
            .spawn_service(&service("who", "id -u; id -G", Some("nobody")), dir.path())
            .unwrap();
        assert_eq!(system.wait_child(pid).unwrap(), ExitStatus::Exited(0));
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        let lines = log_texts(dir.path(), "who", 2);
        assert_eq!(lines[0], nobody.uid.to_string());
        assert!(!lines[1].split(' ').any(|gid| gid == "0"), "{lines:?}");
    }

    #[test]
    fn a_service_user_that_does_not_exist_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = NixSystem::default()
            .spawn_service(
                &service("ghost", "true", Some("no-such-user-x")),
                dir.path(),
            )
            .unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "user no-such-user-x is not in /etc/passwd"
        );
    }

    #[test]
    fn a_socket_is_ready_once_bound_and_a_stale_one_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let mut system = NixSystem::default();
        assert!(!system.socket_exists(&path));
        system.remove_stale_socket(&path).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(system.socket_exists(&path));
        drop(listener);
        system.remove_stale_socket(&path).unwrap();
        assert!(!path.exists());
        std::fs::write(&path, "").unwrap();
        assert!(!system.socket_exists(&path));
        let error = system.remove_stale_socket(&path).unwrap_err().to_string();
        assert!(
            error.ends_with("sock is there and is not a socket"),
            "{error}"
        );
    }

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

    #[test]
    fn the_screen_runs_on_every_console_the_kernel_writes_to() {
        let dev = Path::new("/dev");
        assert_eq!(
            console_devices("tty0 ttyS0\n", dev),
            [PathBuf::from("/dev/tty1"), PathBuf::from("/dev/ttyS0")]
        );
        assert_eq!(
            console_devices("ttyS0 ttyS0", dev),
            [PathBuf::from("/dev/ttyS0")]
        );
        assert_eq!(
            console_devices("../sda .. ttyS1", dev),
            [PathBuf::from("/dev/ttyS1")]
        );
        assert!(console_devices("\n", dev).is_empty());
    }
}
