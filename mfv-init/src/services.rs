//! The host's services: the long-running programs (virtlogd, libvirtd, later the host daemon
//! and mfv-web) that PID 1 starts after the boot in dependency order, keeps running, and stops
//! in reverse order at shutdown.
//!
//! Nothing a service does stops the host. One that ends is started again after a delay that
//! doubles with each quick exit ([`FIRST_BACKOFF`] up to [`MAX_BACKOFF`]) and falls back once a
//! process ran for [`STABLE_RUN`]; [`CRASH_LOOP_EXITS`] exits within [`CRASH_LOOP_WINDOW`] make
//! it crash-looping, which the console and the status say, while it is still retried at the
//! longest delay. How PID 1 knows a service is ready is its [`Readiness`]; a service starts
//! only when those it comes after are ready, and once those it yields to are ready or have
//! failed, so that the web server has the machine to itself while it starts and the VM
//! services follow. Every change of state is published for the host daemon
//! ([`mfv_host::services`]); each service's output goes to its own log there.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mfv_api::{ServiceState, ServiceStatus};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::clock::Clock;
use crate::console::seconds_3;
use crate::system::{ChildExit, ExitStatus, System};

/// The delay before the first restart after a quick exit.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest delay between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A process that ran this long was not a quick exit: the delay starts over.
pub const STABLE_RUN: Duration = Duration::from_secs(60);
/// This many exits within [`CRASH_LOOP_WINDOW`] make a crash loop.
pub const CRASH_LOOP_EXITS: usize = 5;
/// See [`CRASH_LOOP_EXITS`].
pub const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(300);
/// How often a starting service is asked whether it is ready.
pub const READY_POLL: Duration = Duration::from_millis(20);
/// A service that has been starting this long no longer holds back those that yield to it.
pub const YIELD_LIMIT: Duration = Duration::from_secs(10);
/// The first descriptor a service gets handed over (after stdin, stdout and stderr): its
/// listeners, then its readiness pipe.
pub const FIRST_HANDED_OVER_FD: RawFd = 3;
/// How often the processes are checked while a service stops.
const STOP_POLL: Duration = Duration::from_millis(20);

/// How PID 1 knows that a service it started is ready, so that those after it may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// As soon as its process runs.
    Running,
    /// Once its new process has bound this Unix socket. A stale one is removed before the
    /// start: connecting to find out would leave an error in libvirtd's log at every boot.
    Socket(PathBuf),
    /// Once its process writes to the pipe PID 1 hands over as the descriptor after its
    /// listeners, which its arguments name (as s6's notification-fd): for a service whose
    /// readiness nothing else shows, such as the web server, whose listeners PID 1 binds.
    Notify,
}

/// A service: what to run, as whom, and when it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Its name in the status and the logs, e.g. `libvirtd`.
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The user it runs as, with that user's groups; root when `None`.
    pub user: Option<String>,
    /// How PID 1 knows it is ready.
    pub ready: Readiness,
    /// TCP addresses PID 1 binds and hands over as listening descriptors 3, 4, ... in
    /// this order, for a service whose user may not bind them (ports below 1024).
    pub listen: Vec<SocketAddr>,
    /// The services that must be ready before it starts (named earlier in the list).
    pub after: Vec<String>,
    /// The services that go first (named earlier in the list): it starts once each is ready,
    /// has ended, could not start, or has been starting for [`YIELD_LIMIT`]. An order that
    /// leaves the machine to them while they start, not a need: it starts all the same when
    /// one of them fails.
    pub yield_to: Vec<String>,
    /// How long it gets between SIGTERM and SIGKILL at shutdown.
    pub stop_grace: Duration,
}

/// One service and its process.
#[derive(Debug)]
struct Service {
    spec: ServiceSpec,
    state: ServiceState,
    pid: Option<Pid>,
    started_at: Duration,
    restart_at: Option<Duration>,
    backoff: Duration,
    restarts: u32,
    last_exit: Option<ExitStatus>,
    /// When its recent processes ended, oldest first, within [`CRASH_LOOP_WINDOW`].
    exits: VecDeque<Duration>,
    /// Its program is not in this image: it is never started.
    absent: bool,
    /// It exited [`CRASH_LOOP_EXITS`] times within [`CRASH_LOOP_WINDOW`] and no process of
    /// it has run for [`STABLE_RUN`] since.
    crash_looping: bool,
    /// A restart was asked for and its process got SIGTERM: its exit is not a crash.
    restart_asked: bool,
    /// When that process gets SIGKILL if it is still running.
    restart_kill_at: Option<Duration>,
    /// PID 1 holds it back ([`Supervisor::hold`]) until it releases it.
    held: bool,
}

impl Service {
    /// Whether those that yield to it may start at `now`: it is ready, has ended or could
    /// not start (it is restarting), is not in this image, or has been starting for
    /// [`YIELD_LIMIT`].
    fn has_gone_first(&self, now: Duration) -> bool {
        match self.state {
            ServiceState::Waiting => self.absent,
            ServiceState::Starting => {
                self.last_exit.is_some() || now.saturating_sub(self.started_at) >= YIELD_LIMIT
            }
            _ => true,
        }
    }
}

/// The services and their processes.
#[derive(Debug, Default)]
pub struct Supervisor {
    services: Vec<Service>,
    /// Where the status and the logs go (`/run/mfv`).
    run_dir: PathBuf,
    /// Set by [`Supervisor::stop`]: nothing is started or restarted any more.
    stopping: bool,
}

impl Supervisor {
    /// The services of `specs`, in that order, none started, with their status and logs in
    /// `run_dir`. A spec that comes after a name not listed before it is an error naming both.
    pub fn new(specs: Vec<ServiceSpec>, run_dir: &Path) -> anyhow::Result<Supervisor> {
        let mut services: Vec<Service> = Vec::new();
        for spec in specs {
            if services
                .iter()
                .any(|service| service.spec.name == spec.name)
            {
                anyhow::bail!("service {} is listed twice", spec.name);
            }
            for needed in spec.after.iter().chain(&spec.yield_to) {
                if !services.iter().any(|service| &service.spec.name == needed) {
                    anyhow::bail!(
                        "service {} comes after {needed}, which is not listed before it",
                        spec.name
                    );
                }
            }
            services.push(Service {
                spec,
                state: ServiceState::Waiting,
                pid: None,
                started_at: Duration::ZERO,
                restart_at: None,
                backoff: FIRST_BACKOFF,
                restarts: 0,
                last_exit: None,
                exits: VecDeque::new(),
                absent: false,
                crash_looping: false,
                restart_asked: false,
                restart_kill_at: None,
                held: false,
            });
        }
        Ok(Supervisor {
            services,
            run_dir: run_dir.to_owned(),
            stopping: false,
        })
    }

    /// Holds the service `name` back: it does not start, whatever its turn, until
    /// [`Supervisor::release`]. Nothing when there is no such service.
    pub fn hold(&mut self, name: &str) {
        self.set_held(name, true);
    }

    /// Lets the service `name` start when its turn comes again.
    pub fn release(&mut self, name: &str) {
        self.set_held(name, false);
    }

    fn set_held(&mut self, name: &str, held: bool) {
        if let Some(service) = self
            .services
            .iter_mut()
            .find(|service| service.spec.name == name)
        {
            service.held = held;
        }
    }

    /// Whether the service `name` has had its turn to go first at `now`, by the rule of
    /// [`ServiceSpec::yield_to`]: it is ready, has ended, could not start or has been
    /// starting for [`YIELD_LIMIT`]; true when there is no such service.
    pub fn has_gone_first(&self, name: &str, now: Duration) -> bool {
        self.services
            .iter()
            .find(|service| service.spec.name == name)
            .is_none_or(|service| service.has_gone_first(now))
    }

    /// Whether there is no service at all.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Starts every service whose turn it is and marks those that say so as ready.
    /// Returns the console lines of what happened; empty when nothing changed.
    pub fn step(&mut self, now: Duration, system: &mut impl System) -> Vec<String> {
        let mut lines = Vec::new();
        if self.stopping {
            return lines;
        }
        for index in 0..self.services.len() {
            let ready = |name: &String, services: &[Service]| {
                services
                    .iter()
                    .any(|other| &other.spec.name == name && other.state == ServiceState::Running)
            };
            let gone_first = |name: &String, services: &[Service]| {
                services
                    .iter()
                    .any(|other| &other.spec.name == name && other.has_gone_first(now))
            };
            let service = &self.services[index];
            if service.absent {
                continue;
            }
            let missing = service.spec.after.iter().find(|name| {
                self.services
                    .iter()
                    .any(|other| &other.spec.name == *name && other.absent)
            });
            if let Some(missing) = missing {
                let line = format!(
                    "service {}: not started: it needs {missing}, which is not in this image",
                    service.spec.name
                );
                let service = &mut self.services[index];
                service.absent = true;
                service.state = ServiceState::Stopped;
                lines.push(line);
                continue;
            }
            match service.state {
                ServiceState::Waiting
                    if !service.held
                        && service
                            .spec
                            .after
                            .iter()
                            .all(|name| ready(name, &self.services))
                        && service
                            .spec
                            .yield_to
                            .iter()
                            .all(|name| gone_first(name, &self.services)) =>
                {
                    lines.extend(self.start(index, now, system));
                }
                ServiceState::Restarting if service.restart_at.is_some_and(|at| now >= at) => {
                    lines.extend(self.start(index, now, system));
                }
                ServiceState::Running
                    if service.crash_looping
                        && now.saturating_sub(service.started_at) >= STABLE_RUN =>
                {
                    let service = &mut self.services[index];
                    service.crash_looping = false;
                    lines.push(format!(
                        "service {}: running for {} s; out of its crash loop",
                        service.spec.name,
                        STABLE_RUN.as_secs()
                    ));
                }
                _ if service.restart_kill_at.is_some_and(|at| now >= at) => {
                    let service = &mut self.services[index];
                    service.restart_kill_at = None;
                    if let Some(pid) = service.pid {
                        lines.push(format!(
                            "service {}: still running {} s after SIGTERM, sending SIGKILL",
                            service.spec.name,
                            seconds_3(service.spec.stop_grace)
                        ));
                        if let Err(error) = system.kill(pid, Signal::SIGKILL) {
                            lines.push(format!("service {}: {error:#}", service.spec.name));
                        }
                    }
                }
                ServiceState::Starting => {
                    let service = &mut self.services[index];
                    let answers = match &service.spec.ready {
                        Readiness::Running => true,
                        Readiness::Socket(socket) => system.socket_exists(socket),
                        Readiness::Notify => system.notified_ready(&service.spec.name),
                    };
                    if answers {
                        service.state = ServiceState::Running;
                        lines.push(format!(
                            "service {}: ready after {} s",
                            service.spec.name,
                            seconds_3(now.saturating_sub(service.started_at))
                        ));
                    }
                }
                _ => {}
            }
        }
        lines
    }

    fn start(&mut self, index: usize, now: Duration, system: &mut impl System) -> Vec<String> {
        let service = &mut self.services[index];
        if !system.program_exists(&service.spec.program) {
            service.absent = true;
            service.state = ServiceState::Stopped;
            return vec![format!(
                "service {}: {} is not in this image; not started",
                service.spec.name,
                service.spec.program.display()
            )];
        }
        let restart = service.last_exit.is_some();
        // Its socket appears only when the new process has bound it.
        let stale = match &service.spec.ready {
            Readiness::Socket(socket) => system.remove_stale_socket(socket),
            Readiness::Running | Readiness::Notify => Ok(()),
        };
        match stale.and_then(|()| system.spawn_service(&service.spec, &self.run_dir)) {
            Ok(pid) => {
                service.pid = Some(pid);
                service.started_at = now;
                service.restart_at = None;
                service.state = ServiceState::Starting;
                if restart {
                    service.restarts += 1;
                }
                if service.spec.ready == Readiness::Running {
                    service.state = ServiceState::Running;
                }
                vec![format!(
                    "service {}: {} (pid {pid})",
                    service.spec.name,
                    if restart { "restarted" } else { "started" }
                )]
            }
            Err(error) => {
                let delay = service.backoff;
                service.backoff = (service.backoff * 2).min(MAX_BACKOFF);
                service.restart_at = Some(now + delay);
                service.state = ServiceState::Restarting;
                vec![format!(
                    "service {}: cannot start: {error:#}; trying again in {} s",
                    service.spec.name,
                    seconds_3(delay)
                )]
            }
        }
    }

    /// Takes note that `exit`'s process ended, when it was a service's; returns the console
    /// lines, or `None` when the process was not a service's.
    pub fn exited(&mut self, exit: &ChildExit, now: Duration) -> Option<Vec<String>> {
        let service = self
            .services
            .iter_mut()
            .find(|service| service.pid == Some(exit.pid))?;
        service.pid = None;
        service.last_exit = Some(exit.status);
        if self.stopping {
            service.state = ServiceState::Stopped;
            return Some(vec![format!(
                "service {}: stopped ({})",
                service.spec.name, exit.status
            )]);
        }
        let ran = now.saturating_sub(service.started_at);
        service.restart_kill_at = None;
        if std::mem::take(&mut service.restart_asked) {
            service.restart_at = Some(now);
            service.state = ServiceState::Restarting;
            return Some(vec![format!(
                "service {}: stopped for a restart ({})",
                service.spec.name, exit.status
            )]);
        }
        if ran >= STABLE_RUN {
            service.backoff = FIRST_BACKOFF;
        }
        service.exits.push_back(now);
        while service
            .exits
            .front()
            .is_some_and(|&at| now.saturating_sub(at) > CRASH_LOOP_WINDOW)
        {
            service.exits.pop_front();
        }
        let mut lines = Vec::new();
        let crash_looping = service.exits.len() >= CRASH_LOOP_EXITS;
        let delay = if crash_looping {
            MAX_BACKOFF
        } else {
            service.backoff
        };
        service.backoff = (service.backoff * 2).min(MAX_BACKOFF);
        service.restart_at = Some(now + delay);
        lines.push(format!(
            "service {}: exited ({}) after {} s; restarting in {} s",
            service.spec.name,
            exit.status,
            seconds_3(ran),
            seconds_3(delay)
        ));
        if crash_looping && !service.crash_looping {
            lines.push(format!(
                "service {}: crash loop: {} exits within {} s; restarting every {} s",
                service.spec.name,
                service.exits.len(),
                CRASH_LOOP_WINDOW.as_secs(),
                MAX_BACKOFF.as_secs()
            ));
        }
        service.crash_looping = crash_looping;
        service.state = ServiceState::Restarting;
        Some(lines)
    }

    /// Restarts the service `name` as asked (by the host daemon): SIGTERM to its process, which
    /// is started again as soon as it ended (SIGKILL after its grace period), or a start now
    /// when it is waiting for its next try. Returns the console lines.
    pub fn restart(&mut self, name: &str, now: Duration, system: &mut impl System) -> Vec<String> {
        let Some(service) = self
            .services
            .iter_mut()
            .find(|service| service.spec.name == name)
        else {
            return vec![format!(
                "service {name}: restart asked for, but there is no such service"
            )];
        };
        if self.stopping || service.absent {
            return vec![format!(
                "service {name}: restart asked for, but it is not running on this host"
            )];
        }
        match service.pid {
            Some(pid) => {
                service.restart_asked = true;
                service.restart_kill_at = Some(now + service.spec.stop_grace);
                match system.kill(pid, Signal::SIGTERM) {
                    Ok(()) => vec![format!("service {name}: restarting as asked")],
                    Err(error) => vec![format!("service {name}: {error:#}")],
                }
            }
            None if service.state == ServiceState::Restarting => {
                service.restart_at = Some(now);
                vec![format!("service {name}: starting now, as asked")]
            }
            None => vec![format!(
                "service {name}: restart asked for while it waits for the services it comes after"
            )],
        }
    }

    /// Lets `change` set how every service starts from its next start on (a configuration
    /// taken into use changes the web server's port and the VM keeper's stop grace).
    pub fn change_specs(&mut self, mut change: impl FnMut(&mut ServiceSpec)) {
        for service in &mut self.services {
            change(&mut service.spec);
        }
    }

    /// How long until [`Supervisor::step`] has something to do; `None` when only an exit can
    /// change anything.
    pub fn next_wakeup(&self, now: Duration) -> Option<Duration> {
        if self.stopping {
            return None;
        }
        self.services
            .iter()
            .filter_map(|service| match service.state {
                _ if service.restart_kill_at.is_some() => service
                    .restart_kill_at
                    .map(|at| at.saturating_sub(now).min(READY_POLL)),
                ServiceState::Starting => Some(READY_POLL),
                ServiceState::Restarting => service.restart_at.map(|at| at.saturating_sub(now)),
                ServiceState::Running if service.crash_looping => {
                    Some((service.started_at + STABLE_RUN).saturating_sub(now))
                }
                _ => None,
            })
            .min()
    }

    /// Publishes every service's status for the host daemon.
    pub fn publish(&self, system: &mut impl System) -> anyhow::Result<()> {
        let path = self.run_dir.join(mfv_host::services::STATUS_FILE);
        let json = mfv_host::services::status_json(&self.statuses())?;
        system.write_run_file(&path, &json)
    }

    /// Every service's status, in start order.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        self.services
            .iter()
            .map(|service| {
                let state = if service.crash_looping && service.state != ServiceState::Stopped {
                    ServiceState::CrashLooping
                } else {
                    service.state
                };
                let mut status = ServiceStatus::new(service.spec.name.clone(), state);
                status.pid = service.pid.and_then(|pid| u32::try_from(pid.as_raw()).ok());
                status.restarts = service.restarts;
                status.last_exit = service.last_exit.map(|exit| match exit {
                    ExitStatus::Exited(code) => mfv_api::ExitStatus::Exited { code },
                    ExitStatus::Killed(signal) => mfv_api::ExitStatus::Killed {
                        signal: signal as i32,
                    },
                });
                status
            })
            .collect()
    }

    /// Stops the running services in reverse start order: SIGTERM, then SIGKILL when one is
    /// still running after its grace period. Exits of other processes seen meanwhile are
    /// passed over (shutdown stops those next). Returns the console lines.
    pub fn stop(&mut self, system: &mut impl System, clock: &impl Clock) -> Vec<String> {
        self.stopping = true;
        let mut lines = Vec::new();
        for index in (0..self.services.len()).rev() {
            let Some(pid) = self.services[index].pid else {
                self.services[index].state = ServiceState::Stopped;
                continue;
            };
            let name = self.services[index].spec.name.clone();
            let grace = self.services[index].spec.stop_grace;
            if let Err(error) = system.kill(pid, Signal::SIGTERM) {
                lines.push(format!("service {name}: {error:#}"));
            }
            let deadline = clock.uptime() + grace;
            let mut killed = false;
            while self.services[index].pid.is_some() {
                for exit in system.reap_children().exited {
                    if let Some(stopped) = self.exited(&exit, clock.uptime()) {
                        lines.extend(stopped);
                    }
                }
                if self.services[index].pid.is_none() {
                    break;
                }
                if clock.uptime() >= deadline {
                    if killed {
                        lines.push(format!(
                            "service {name}: still running after SIGKILL; left to the shutdown"
                        ));
                        break;
                    }
                    lines.push(format!(
                        "service {name}: still running after {} s, sending SIGKILL",
                        seconds_3(grace)
                    ));
                    if let Err(error) = system.kill(pid, Signal::SIGKILL) {
                        lines.push(format!("service {name}: {error:#}"));
                    }
                    killed = true;
                }
                clock.sleep(STOP_POLL);
            }
            self.services[index].state = ServiceState::Stopped;
        }
        lines
    }
}

/// The VM keeper's name among the services.
pub const VM_KEEPER_SERVICE: &str = "vm-keeper";

/// How long the VM keeper gets to stop when VMs get `deadline` to shut down: the deadline,
/// then the time to force the last ones off and save.
pub fn vm_keeper_stop_grace(deadline: Duration) -> Duration {
    deadline + Duration::from_secs(15)
}

/// The web server's service name.
pub const WEB_SERVICE: &str = "mfv-web";
/// libvirtd's service name: PID 1 holds it back until the host is ready for VMs.
pub const LIBVIRTD_SERVICE: &str = "libvirtd";
/// The HTTPS port without a configuration (`[web] port` sets another).
pub const DEFAULT_HTTPS_PORT: u16 = 443;
/// The plain HTTP port, answered with a redirect to HTTPS.
pub const HTTP_PORT: u16 = 80;

/// The addresses the web server listens on, HTTPS on `https_port` then plain HTTP: every
/// address of the host, IPv6 and IPv4.
pub fn web_listen(https_port: u16) -> Vec<SocketAddr> {
    [https_port, HTTP_PORT]
        .map(|port| SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)))
        .to_vec()
}

/// The binary of the services that use libvirt (the host daemon, and the VM keeper with
/// [`VM_KEEPER_ARG`](crate::vm_keeper::VM_KEEPER_ARG)), installed beside mfv-init.
pub const HOSTD: &str = "mfv-hostd";

/// The services of a Minifed-Virt host: the host daemon (`hostd`, [`HOSTD`], without arguments);
/// mfv-web, as its own unprivileged user, once the daemon answers; then, once the web server serves
/// (or has failed), virtlogd, then libvirtd, which hands QEMU's output to virtlogd, then the VM
/// keeper (`hostd --vm-keeper`), which restores the VMs into libvirtd and is stopped first,
/// shutting them down.
pub fn host_services(hostd: &Path) -> Vec<ServiceSpec> {
    let listen = web_listen(DEFAULT_HTTPS_PORT);
    let web_args = [
        "--https-fd".to_owned(),
        FIRST_HANDED_OVER_FD.to_string(),
        "--http-fd".to_owned(),
        (FIRST_HANDED_OVER_FD + 1).to_string(),
        "--ready-fd".to_owned(),
        (FIRST_HANDED_OVER_FD + 2).to_string(),
    ];
    vec![
        ServiceSpec {
            name: "host-daemon".to_owned(),
            program: hostd.to_owned(),
            args: Vec::new(),
            user: None,
            ready: Readiness::Socket(PathBuf::from(mfv_api::DEFAULT_SOCKET_PATH)),
            listen: Vec::new(),
            after: Vec::new(),
            yield_to: Vec::new(),
            stop_grace: Duration::from_secs(5),
        },
        ServiceSpec {
            name: WEB_SERVICE.to_owned(),
            program: PathBuf::from("/usr/bin/mfv-web"),
            args: web_args.to_vec(),
            user: Some("mfv-web".to_owned()),
            ready: Readiness::Notify,
            listen,
            // Config mode and the status need only the daemon: the web answers without
            // waiting for libvirtd.
            after: vec!["host-daemon".to_owned()],
            yield_to: Vec::new(),
            stop_grace: Duration::from_secs(10),
        },
        ServiceSpec {
            name: "virtlogd".to_owned(),
            program: PathBuf::from("/usr/sbin/virtlogd"),
            args: Vec::new(),
            user: None,
            ready: Readiness::Socket(PathBuf::from("/run/libvirt/virtlogd-sock")),
            listen: Vec::new(),
            after: Vec::new(),
            // libvirtd's start takes as long as the web server's: on a machine with few
            // cores, the web page comes first.
            yield_to: vec![WEB_SERVICE.to_owned()],
            stop_grace: Duration::from_secs(5),
        },
        ServiceSpec {
            name: LIBVIRTD_SERVICE.to_owned(),
            program: PathBuf::from("/usr/sbin/libvirtd"),
            args: Vec::new(),
            user: None,
            ready: Readiness::Socket(PathBuf::from("/run/libvirt/libvirt-sock")),
            listen: Vec::new(),
            after: vec!["virtlogd".to_owned()],
            yield_to: Vec::new(),
            stop_grace: Duration::from_secs(10),
        },
        ServiceSpec {
            name: VM_KEEPER_SERVICE.to_owned(),
            program: hostd.to_owned(),
            args: vec![crate::vm_keeper::VM_KEEPER_ARG.to_owned()],
            user: None,
            ready: Readiness::Running,
            listen: Vec::new(),
            after: vec![LIBVIRTD_SERVICE.to_owned()],
            yield_to: Vec::new(),
            stop_grace: vm_keeper_stop_grace(crate::vm_keeper::VM_SHUTDOWN_DEADLINE),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{FIRST_PID, FakeClock, FakeSystem};
    use crate::system::Reaped;

    fn spec(name: &str, socket: bool, after: &[&str]) -> ServiceSpec {
        ServiceSpec {
            name: name.to_owned(),
            program: PathBuf::from(format!("/usr/sbin/{name}")),
            args: vec!["--verbose".to_owned()],
            user: None,
            ready: if socket {
                Readiness::Socket(PathBuf::from(format!("/run/{name}.sock")))
            } else {
                Readiness::Running
            },
            listen: Vec::new(),
            after: after.iter().map(|name| (*name).to_owned()).collect(),
            yield_to: Vec::new(),
            stop_grace: Duration::from_secs(2),
        }
    }

    /// A web server that says when it serves, and a VM service that yields to it.
    fn web_then_vms() -> Supervisor {
        let web = ServiceSpec {
            ready: Readiness::Notify,
            ..spec("mfv-web", false, &[])
        };
        let vms = ServiceSpec {
            yield_to: vec!["mfv-web".to_owned()],
            ..spec("libvirtd", false, &[])
        };
        supervisor_of(vec![web, vms]).unwrap()
    }

    #[test]
    fn a_notifying_service_is_ready_once_it_says_so_and_those_yielding_start_then() {
        let mut system = FakeSystem::default();
        let mut supervisor = web_then_vms();
        let lines = supervisor.step(Duration::from_secs(3), &mut system);
        assert_eq!(
            lines,
            [format!("service mfv-web: started (pid {FIRST_PID})")]
        );
        assert!(
            supervisor
                .step(Duration::from_millis(3_020), &mut system)
                .is_empty()
        );
        system.notified.push("mfv-web".to_owned());
        let lines = supervisor.step(Duration::from_millis(3_400), &mut system);
        assert_eq!(
            lines,
            [
                "service mfv-web: ready after 0.400 s".to_owned(),
                format!("service libvirtd: started (pid {})", FIRST_PID + 1)
            ]
        );
    }

    #[test]
    fn a_service_yielding_to_one_that_fails_or_hangs_starts_all_the_same() {
        // Its first process exits before it said it serves.
        let mut system = FakeSystem::default();
        let mut supervisor = web_then_vms();
        supervisor.step(Duration::ZERO, &mut system);
        supervisor
            .exited(
                &killed(FIRST_PID, Signal::SIGSEGV),
                Duration::from_millis(500),
            )
            .unwrap();
        let lines = supervisor.step(Duration::from_millis(520), &mut system);
        assert_eq!(
            lines,
            [format!("service libvirtd: started (pid {})", FIRST_PID + 1)]
        );

        // It runs without ever saying it serves.
        let mut system = FakeSystem::default();
        let mut supervisor = web_then_vms();
        supervisor.step(Duration::ZERO, &mut system);
        let just_before = YIELD_LIMIT - Duration::from_millis(1);
        assert!(supervisor.step(just_before, &mut system).is_empty());
        let lines = supervisor.step(YIELD_LIMIT, &mut system);
        assert_eq!(
            lines,
            [format!("service libvirtd: started (pid {})", FIRST_PID + 1)]
        );
        assert_eq!(states(&supervisor)[0].1, ServiceState::Starting);

        // It is not in this image.
        let mut system = FakeSystem::default();
        system
            .missing_programs
            .push(PathBuf::from("/usr/sbin/mfv-web"));
        let mut supervisor = web_then_vms();
        let lines = supervisor.step(Duration::ZERO, &mut system);
        assert_eq!(
            lines,
            [
                "service mfv-web: /usr/sbin/mfv-web is not in this image; not started".to_owned(),
                format!("service libvirtd: started (pid {FIRST_PID})")
            ]
        );
    }

    #[test]
    fn a_held_service_waits_for_its_release_and_the_web_goes_first_by_the_yield_rule() {
        let mut system = FakeSystem::default();
        let mut supervisor = web_then_vms();
        assert!(supervisor.has_gone_first("not-a-service", Duration::ZERO));
        supervisor.hold("libvirtd");
        supervisor.hold("not-a-service");
        let lines = supervisor.step(Duration::ZERO, &mut system);
        assert_eq!(
            lines,
            [format!("service mfv-web: started (pid {FIRST_PID})")]
        );
        assert!(!supervisor.has_gone_first("mfv-web", Duration::from_millis(100)));
        system.notified.push("mfv-web".to_owned());
        let lines = supervisor.step(Duration::from_millis(400), &mut system);
        assert_eq!(lines, ["service mfv-web: ready after 0.400 s"]);
        assert!(supervisor.has_gone_first("mfv-web", Duration::from_millis(400)));
        assert!(
            supervisor
                .step(Duration::from_millis(420), &mut system)
                .is_empty()
        );
        supervisor.release("libvirtd");
        let lines = supervisor.step(Duration::from_millis(800), &mut system);
        assert_eq!(
            lines,
            [format!("service libvirtd: started (pid {})", FIRST_PID + 1)]
        );
    }

    #[test]
    fn a_service_cannot_yield_to_one_listed_after_it() {
        let vms = ServiceSpec {
            yield_to: vec!["mfv-web".to_owned()],
            ..spec("libvirtd", false, &[])
        };
        let error = supervisor_of(vec![vms, spec("mfv-web", false, &[])]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "service libvirtd comes after mfv-web, which is not listed before it"
        );
    }

    #[test]
    fn the_web_server_gets_its_readiness_pipe_after_its_listeners() {
        let services = host_services(Path::new("/usr/sbin/mfv-hostd"));
        let web = services
            .iter()
            .find(|service| service.name == WEB_SERVICE)
            .unwrap();
        let fd_after = |flag: &str| {
            let at = web.args.iter().position(|arg| arg == flag).unwrap();
            web.args[at + 1].parse::<RawFd>().unwrap()
        };
        assert_eq!(web.ready, Readiness::Notify);
        assert_eq!(fd_after("--https-fd"), FIRST_HANDED_OVER_FD);
        assert_eq!(fd_after("--http-fd"), FIRST_HANDED_OVER_FD + 1);
        let after_listeners = FIRST_HANDED_OVER_FD + RawFd::try_from(web.listen.len()).unwrap();
        assert_eq!(fd_after("--ready-fd"), after_listeners);
    }

    fn supervisor_of(specs: Vec<ServiceSpec>) -> anyhow::Result<Supervisor> {
        Supervisor::new(specs, Path::new("/run/mfv"))
    }

    fn states(supervisor: &Supervisor) -> Vec<(String, ServiceState)> {
        supervisor
            .statuses()
            .into_iter()
            .map(|status| (status.name, status.state))
            .collect()
    }

    fn killed(pid: i32, signal: Signal) -> ChildExit {
        ChildExit {
            pid: Pid::from_raw(pid),
            status: ExitStatus::Killed(signal),
        }
    }

    #[test]
    fn a_service_waits_for_the_socket_of_the_one_it_comes_after() {
        let mut system = FakeSystem::default();
        let mut supervisor = supervisor_of(vec![
            spec("virtlogd", true, &[]),
            spec("libvirtd", true, &["virtlogd"]),
        ])
        .unwrap();
        let lines = supervisor.step(Duration::from_secs(10), &mut system);
        assert_eq!(
            lines,
            [format!("service virtlogd: started (pid {FIRST_PID})")]
        );
        assert_eq!(
            states(&supervisor),
            [
                ("virtlogd".to_owned(), ServiceState::Starting),
                ("libvirtd".to_owned(), ServiceState::Waiting)
            ]
        );
        assert_eq!(
            supervisor.next_wakeup(Duration::from_secs(10)),
            Some(READY_POLL)
        );
        // The socket does not answer yet: nothing changes.
        assert!(
            supervisor
                .step(Duration::from_millis(10_100), &mut system)
                .is_empty()
        );
        system
            .answering_sockets
            .push(PathBuf::from("/run/virtlogd.sock"));
        let lines = supervisor.step(Duration::from_millis(10_250), &mut system);
        assert_eq!(
            lines,
            [
                "service virtlogd: ready after 0.250 s".to_owned(),
                format!("service libvirtd: started (pid {})", FIRST_PID + 1)
            ]
        );
        assert!(system.calls.contains(
            &"spawn service libvirtd: /usr/sbin/libvirtd --verbose (logs in /run/mfv)".to_owned()
        ));
    }

    #[test]
    fn quick_exits_back_off_doubling_and_a_long_run_starts_over() {
        let mut system = FakeSystem::default();
        let mut supervisor = supervisor_of(vec![spec("mfv-web", false, &[])]).unwrap();
        supervisor.step(Duration::ZERO, &mut system);
        assert_eq!(states(&supervisor)[0].1, ServiceState::Running);
        let mut now = Duration::from_secs(1);
        let mut delays = Vec::new();
        for round in 0..3 {
            let lines = supervisor
                .exited(&killed(FIRST_PID + round, Signal::SIGSEGV), now)
                .unwrap();
            delays.push(supervisor.next_wakeup(now).unwrap());
            assert!(lines[0].starts_with("service mfv-web: exited (killed by SIGSEGV) after "));
            assert_eq!(states(&supervisor)[0].1, ServiceState::Restarting);
            // Not yet: the delay has not passed.
            assert!(supervisor.step(now, &mut system).is_empty());
            now += delays[delays.len() - 1];
            let lines = supervisor.step(now, &mut system);
            assert_eq!(
                lines,
                [format!(
                    "service mfv-web: restarted (pid {})",
                    FIRST_PID + round + 1
                )]
            );
        }
        assert_eq!(
            delays,
            [
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4)
            ]
        );
        // A process that ran past STABLE_RUN: the delay starts over.
        now += STABLE_RUN;
        supervisor
            .exited(&killed(FIRST_PID + 3, Signal::SIGKILL), now)
            .unwrap();
        assert_eq!(supervisor.next_wakeup(now), Some(FIRST_BACKOFF));
        let status = &supervisor.statuses()[0];
        assert_eq!(status.restarts, 3);
        assert_eq!(status.pid, None);
        assert_eq!(
            status.last_exit,
            Some(mfv_api::ExitStatus::Killed { signal: 9 })
        );
    }

    #[test]
    fn five_exits_in_five_minutes_are_a_crash_loop_that_is_still_retried() {
        let mut system = FakeSystem::default();
        let mut supervisor = supervisor_of(vec![spec("libvirtd", false, &[])]).unwrap();
        supervisor.step(Duration::ZERO, &mut system);
        let mut now = Duration::ZERO;
        let mut all = Vec::new();
        for round in 0..6 {
            now += Duration::from_secs(1);
            all.extend(
                supervisor
                    .exited(
                        &ChildExit {
                            pid: Pid::from_raw(FIRST_PID + round),
                            status: ExitStatus::Exited(1),
                        },
                        now,
                    )
                    .unwrap(),
            );
            now += supervisor.next_wakeup(now).unwrap();
            supervisor.step(now, &mut system);
        }
        let loops: Vec<_> = all
            .iter()
            .filter(|line| line.contains("crash loop"))
            .collect();
        assert_eq!(
            loops,
            ["service libvirtd: crash loop: 5 exits within 300 s; restarting every 60 s"]
        );
        assert!(
            all.last().unwrap().ends_with("restarting in 60.000 s"),
            "{all:?}"
        );
        assert_eq!(states(&supervisor)[0].1, ServiceState::CrashLooping);
        assert_eq!(supervisor.statuses()[0].restarts, 6);
        // A process that stays up for STABLE_RUN ends the crash loop.
        assert_eq!(supervisor.next_wakeup(now), Some(STABLE_RUN));
        now += STABLE_RUN;
        assert_eq!(
            supervisor.step(now, &mut system),
            ["service libvirtd: running for 60 s; out of its crash loop"]
        );
        assert_eq!(states(&supervisor)[0].1, ServiceState::Running);
    }

    #[test]
    fn a_missing_program_is_reported_once_and_a_failed_spawn_is_retried() {
        let mut system = FakeSystem::default();
        system
            .missing_programs
            .push(PathBuf::from("/usr/sbin/libvirtd"));
        system.spawn_failures = 1;
        let mut supervisor = supervisor_of(vec![
            spec("virtlogd", false, &[]),
            spec("libvirtd", false, &["virtlogd"]),
        ])
        .unwrap();
        let lines = supervisor.step(Duration::ZERO, &mut system);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("service virtlogd: cannot start: ")
                && lines[0].ends_with("; trying again in 1.000 s"),
            "{lines:?}"
        );
        let lines = supervisor.step(Duration::from_secs(1), &mut system);
        assert_eq!(
            lines,
            [
                format!("service virtlogd: started (pid {FIRST_PID})"),
                "service libvirtd: /usr/sbin/libvirtd is not in this image; not started".to_owned()
            ]
        );
        let mut supervisor = supervisor_of(vec![
            spec("libvirtd", false, &[]),
            spec("mfv-web", false, &["libvirtd"]),
        ])
        .unwrap();
        system.spawn_failures = 0;
        assert_eq!(
            supervisor.step(Duration::ZERO, &mut system),
            [
                "service libvirtd: /usr/sbin/libvirtd is not in this image; not started",
                "service mfv-web: not started: it needs libvirtd, which is not in this image"
            ]
        );
        assert!(
            supervisor
                .step(Duration::from_secs(2), &mut system)
                .is_empty()
        );
        assert_eq!(supervisor.next_wakeup(Duration::from_secs(2)), None);
    }

    #[test]
    fn a_dependency_that_is_not_listed_before_is_refused() {
        let error = supervisor_of(vec![
            spec("libvirtd", false, &["virtlogd"]),
            spec("virtlogd", false, &[]),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "service libvirtd comes after virtlogd, which is not listed before it"
        );
        let error = supervisor_of(vec![spec("a", false, &[]), spec("a", false, &[])])
            .unwrap_err()
            .to_string();
        assert_eq!(error, "service a is listed twice");
    }

    #[test]
    fn stop_goes_in_reverse_order_and_kills_what_outlives_its_grace() {
        let mut system = FakeSystem::default();
        // Every reading of the clock moves it 3 s: past the grace at the first look.
        let clock = FakeClock::new(Duration::ZERO, Duration::from_secs(3));
        let mut supervisor = supervisor_of(vec![
            spec("virtlogd", false, &[]),
            spec("libvirtd", false, &["virtlogd"]),
        ])
        .unwrap();
        supervisor.step(Duration::ZERO, &mut system);
        supervisor.step(Duration::ZERO, &mut system);
        // libvirtd (pid 101) ignores SIGTERM, then dies of SIGKILL; virtlogd stops at once.
        system.reaps.extend([
            Reaped {
                exited: vec![],
                children_left: true,
            },
            Reaped {
                exited: vec![killed(FIRST_PID + 1, Signal::SIGKILL)],
                children_left: true,
            },
            Reaped {
                exited: vec![killed(FIRST_PID, Signal::SIGTERM)],
                children_left: false,
            },
        ]);
        let lines = supervisor.stop(&mut system, &clock);
        assert_eq!(
            lines,
            [
                "service libvirtd: still running after 2.000 s, sending SIGKILL",
                "service libvirtd: stopped (killed by SIGKILL)",
                "service virtlogd: stopped (killed by SIGTERM)",
            ]
        );
        let kills: Vec<_> = system
            .calls
            .iter()
            .filter(|call| call.starts_with("kill "))
            .collect();
        assert_eq!(
            kills,
            [
                &format!("kill {} SIGTERM", FIRST_PID + 1),
                &format!("kill {} SIGKILL", FIRST_PID + 1),
                &format!("kill {FIRST_PID} SIGTERM"),
            ]
        );
        assert!(
            states(&supervisor)
                .iter()
                .all(|(_, state)| *state == ServiceState::Stopped)
        );
        // Stopped for good: no restart, nothing to wake up for.
        assert!(
            supervisor
                .step(Duration::from_secs(100), &mut system)
                .is_empty()
        );
        assert_eq!(supervisor.next_wakeup(Duration::from_secs(100)), None);
    }

    #[test]
    fn an_asked_restart_is_not_a_crash_and_a_hung_process_gets_sigkill() {
        let mut system = FakeSystem::default();
        let mut supervisor = supervisor_of(vec![spec("mfv-web", false, &[])]).unwrap();
        supervisor.step(Duration::ZERO, &mut system);
        let now = Duration::from_secs(5);
        assert_eq!(
            supervisor.restart("mfv-web", now, &mut system),
            ["service mfv-web: restarting as asked"]
        );
        // It ignores SIGTERM: SIGKILL once its grace (2 s) has passed.
        assert!(supervisor.next_wakeup(now).unwrap() <= READY_POLL);
        assert!(
            supervisor
                .step(now + Duration::from_secs(1), &mut system)
                .is_empty()
        );
        assert_eq!(
            supervisor.step(now + Duration::from_secs(2), &mut system),
            ["service mfv-web: still running 2.000 s after SIGTERM, sending SIGKILL"]
        );
        let exit = killed(FIRST_PID, Signal::SIGKILL);
        assert_eq!(
            supervisor.exited(&exit, now + Duration::from_secs(2)),
            Some(vec![
                "service mfv-web: stopped for a restart (killed by SIGKILL)".to_owned()
            ])
        );
        // Started again at once, and counted as a restart, not a crash.
        assert_eq!(
            supervisor.step(now + Duration::from_secs(2), &mut system),
            [format!(
                "service mfv-web: restarted (pid {})",
                FIRST_PID + 1
            )]
        );
        let status = &supervisor.statuses()[0];
        assert_eq!((status.state, status.restarts), (ServiceState::Running, 1));
        let kills: Vec<_> = system
            .calls
            .iter()
            .filter(|call| call.starts_with("kill "))
            .collect();
        assert_eq!(
            kills,
            [
                &format!("kill {FIRST_PID} SIGTERM"),
                &format!("kill {FIRST_PID} SIGKILL")
            ]
        );
        assert_eq!(
            supervisor.restart("nope", now, &mut system),
            ["service nope: restart asked for, but there is no such service"]
        );
    }

    #[test]
    fn exits_of_other_processes_are_not_the_supervisors() {
        let mut supervisor = supervisor_of(vec![spec("virtlogd", false, &[])]).unwrap();
        assert!(
            supervisor
                .exited(&killed(4242, Signal::SIGTERM), Duration::ZERO)
                .is_none()
        );
    }
}
