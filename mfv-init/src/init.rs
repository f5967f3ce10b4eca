//! The life of PID 1: banner, boot sequence (phases), then shutdown on `mfv.halt` or the
//! console screen and the signal loop; a fatal error leads to a clean halt.
//!
//! The console is not a way around authentication: PID 1 keeps the console screen
//! (`mfv-init --console`: the host's status, and a shell only after an administrator's password)
//! on it, restarted whenever it ends. A root shell without a login exists only where the
//! kernel command line says `mfv.rescue`: whoever can edit it owns the machine anyway. The
//! same holds for the fatal path: without `mfv.rescue` it halts without a shell.

use std::any::Any;
use std::fmt::Display;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use mfv_api::{BootPhase, BootReport, ConfigProvenance, Virtualization};
use mfv_config::cmdline::{BootOptions, KernelCmdline};
use mfv_config::discovery::{Discovery, DiscoveryParams, DiscoveryReport};
use mfv_config::schema::Config;
use mfv_host::clock::time_zone_line;
use mfv_host::console::{CONFIG_REPORT_FILE, WEB_PORT_FILE};
use mfv_host::daemon::{HOST_STATE_FILE, HostState, host_state_json, provenance};
use mfv_host::discovery::with_usb_storage_settling;
use mfv_host::hardware::{ProbeSettings, modules_dir};
use mfv_host::network::handover::{HandoverFile, NetworkOwner};
use mfv_host::network::{LiveNetwork, Network, NetworkPlan, configure};
use mfv_host::settings::not_applied;
use mfv_host::setup::{DEFAULT_SETUP_TIMEOUT, SETUP_STATE_FILE, SetupFallback};

use crate::clock::Clock;
use crate::console::{Console, millis_1, seconds_3};
use crate::hardware::COLDPLUG_KEY;
use crate::mounts::{self, EARLY_MOUNTS};
use crate::services::{
    HOSTD, LIBVIRTD_SERVICE, ServiceSpec, Supervisor, VM_KEEPER_SERVICE, WEB_SERVICE,
    host_services, vm_keeper_stop_grace, web_listen,
};
use crate::signals::{ShutdownRequest, SignalSource};
use crate::system::{ConsoleProgram, ShutdownAction, System};

mod adoption;

/// How `service` starts on a host with `config`: the VM keeper's stop grace follows the VMs'
/// shutdown deadline, the web server listens on `[web] port`.
fn configure_service(service: &mut ServiceSpec, config: &Config) {
    if service.name == VM_KEEPER_SERVICE {
        let deadline = Duration::from_secs(u64::from(config.host.vm_shutdown_timeout));
        service.stop_grace = vm_keeper_stop_grace(deadline);
    }
    if service.name == WEB_SERVICE && !service.listen.is_empty() {
        service.listen = web_listen(config.web.port);
    }
}

/// Where mfv-init keeps its runtime files and publishes the host's state.
pub const RUN_DIR: &str = "/run/mfv";

/// The argument that makes this binary the console screen instead of an init.
pub const CONSOLE_SCREEN_ARG: &str = "--console";

/// The host name set by the `hostname` phase until a configuration names the host.
pub const DEFAULT_HOSTNAME: &str = "minifed";

/// What the `config` phase logs when no valid configuration was found.
pub const SETUP_NEEDED: &str = "config: no usable configuration; setup is needed";

/// Where things are and how long to wait; paths are parameters so tests use fixture trees.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where proc is mounted (`/proc`); `cmdline`, `self/mountinfo` and
    /// `sys/kernel/osrelease` are read from there.
    pub proc_dir: PathBuf,
    /// Where sysfs is mounted (`/sys`).
    pub sysfs_root: PathBuf,
    /// Where the device nodes are (`/dev`).
    pub dev_dir: PathBuf,
    /// Where mfv-init keeps its runtime files; config discovery mounts candidates under it
    /// (`/run/mfv`).
    pub run_dir: PathBuf,
    /// Where the kernel modules are, one directory per kernel release (`/lib/modules`).
    pub modules_root: PathBuf,
    /// The shell `mfv.rescue` puts on the console (`/bin/sh`); absent in images without one.
    pub shell: PathBuf,
    /// The console screen: the host's status and the administrators' login
    /// (`mfv-init --console`).
    pub console_screen: ConsoleProgram,
    /// The console the screen or the shell runs on (`/dev/console`).
    pub console: PathBuf,
    /// The host name the `hostname` phase sets when no configuration names the host.
    pub hostname: String,
    /// Whether this process is PID 1: only then does a fatal error halt the machine.
    pub is_pid1: bool,
    /// How long processes get between SIGTERM and SIGKILL at shutdown.
    pub stop_grace: Duration,
    /// The shortest time between two starts of the console screen or shell.
    pub respawn_interval: Duration,
    /// The services PID 1 keeps running after the boot, in start order.
    pub services: Vec<ServiceSpec>,
}

impl Settings {
    /// The settings of the real system.
    pub fn system(is_pid1: bool) -> Settings {
        // Where this binary is: wherever another init started it from, or, as the image's PID 1
        // (before /proc is mounted, so /proc/self/exe cannot be read), where the image puts it.
        let init =
            std::env::current_exe().unwrap_or_else(|_| mfv_early_init::Layout::system().mfv_init());
        Settings {
            proc_dir: PathBuf::from("/proc"),
            sysfs_root: PathBuf::from("/sys"),
            dev_dir: PathBuf::from("/dev"),
            run_dir: PathBuf::from(RUN_DIR),
            modules_root: PathBuf::from("/lib/modules"),
            shell: PathBuf::from("/bin/sh"),
            console_screen: ConsoleProgram {
                path: init.clone(),
                args: vec![CONSOLE_SCREEN_ARG.to_string()],
            },
            console: PathBuf::from("/dev/console"),
            hostname: DEFAULT_HOSTNAME.to_string(),
            is_pid1,
            stop_grace: Duration::from_secs(2),
            respawn_interval: Duration::from_secs(1),
            // mfv-hostd is installed beside mfv-init.
            services: host_services(&init.with_file_name(HOSTD)),
        }
    }
}

/// How [`Init::run`] ended. For PID 1 the caller never exits whatever this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// reboot(2) was called and accepted (it returns only with a fake system).
    ShutDown(ShutdownAction),
    /// reboot(2) was refused.
    ShutdownFailed(ShutdownAction),
    /// A fatal error in a process that is not PID 1: nothing was shut down.
    Failed,
}

/// One boot phase: the name the console shows, whether a failure ends the boot (the rescue
/// path) instead of being logged and passed over, and its step. A new phase is one entry in
/// [`Init::PHASES`] and one method.
struct Phase<S: System, C: Clock, W: Write> {
    name: &'static str,
    fatal: bool,
    step: fn(&mut Init<S, C, W>, &mut BootOptions) -> anyhow::Result<()>,
}

/// The console program's state in the main loop: the console screen, or with `mfv.rescue`
/// the shell.
#[derive(Debug)]
struct ConsoleChild {
    /// `console screen` or `console shell`, as the console lines name it.
    what: &'static str,
    program: ConsoleProgram,
    /// The console it runs on.
    device: PathBuf,
    pid: Option<nix::unistd::Pid>,
    started_at: Option<Duration>,
    restart_at: Option<Duration>,
    announced: bool,
}

/// PID 1, with its system, clock and console.
#[derive(Debug)]
pub struct Init<S: System, C: Clock, W: Write> {
    pub(crate) system: S,
    clock: C,
    pub(crate) console: Console<W>,
    settings: Settings,
    started: Duration,
    /// The kernel command line once the `cmdline` phase read it (empty before or if it
    /// could not be read).
    cmdline: KernelCmdline,
    /// What the `config` phase found (`None` before it ran).
    config: Option<DiscoveryReport>,
    /// `mfv.rescue` was on the kernel command line.
    rescue: bool,
    /// The services and their processes.
    supervisor: Supervisor,
    /// The boot phases that ran, for the boot report.
    phases: Vec<BootPhase>,
    /// How VMs run, once the `virtualization` phase said.
    acceleration: Option<Virtualization>,
    /// The network after the `network` phase, changed through the host daemon.
    network: Option<NetworkOwner>,
    /// How long the console setup waits for an operator, when the boot found no usable
    /// configuration and no `mfv.net=`.
    setup_timeout: Option<Duration>,
    /// The wait for an operator and the DHCP fallback, once the services run.
    setup: Option<SetupFallback>,
}

impl<S: System, C: Clock, W: Write> Init<S, C, W> {
    /// Takes the start time from `clock`.
    pub fn new(system: S, clock: C, console: W, settings: Settings) -> Init<S, C, W> {
        let started = clock.uptime();
        Init {
            system,
            clock,
            console: Console::new(console),
            settings,
            started,
            cmdline: KernelCmdline::default(),
            config: None,
            rescue: false,
            supervisor: Supervisor::default(),
            phases: Vec::new(),
            acceleration: None,
            network: None,
            setup_timeout: None,
            setup: None,
        }
    }

    /// Runs everything: banner, boot sequence, then `mfv.halt` or the console shell and the
    /// signal loop until a shutdown is requested. `signals` is the signal set-up's result:
    /// without signals the boot still runs, then takes the fatal path.
    pub fn run<G: SignalSource>(&mut self, signals: anyhow::Result<G>) -> RunEnd {
        self.console.banner(self.started);
        if let Err(error) = self.system.seed_random_in_background() {
            self.log(format_args!("random: {error:#}"));
        }
        if self.settings.is_pid1 {
            if let Err(error) = self.system.disable_ctrl_alt_del() {
                self.log(format_args!("ctrl-alt-del: {error:#}"));
            }
        }
        let options = match self.boot_sequence() {
            Ok(options) => options,
            Err(error) => return self.fatal(&error),
        };
        if let Some(halt) = options.halt {
            return self.shutdown(ShutdownRequest {
                action: halt.into(),
                requested_by: "mfv.halt",
            });
        }
        self.publish_host_state();
        let mut signals = match signals.context("signal set-up") {
            Ok(signals) => signals,
            Err(error) => return self.fatal(&error),
        };
        let supervised = catch_unwind(AssertUnwindSafe(|| self.supervise(&mut signals)));
        match supervised {
            Ok(Ok(request)) => self.shutdown(request),
            Ok(Err(error)) => self.fatal(&error),
            Err(panic) => self.fatal(&anyhow!("panic: {}", panic_message(&*panic))),
        }
    }

    /// One console line stamped with the uptime.
    fn log(&mut self, message: impl Display) {
        let now = self.clock.uptime();
        self.console.line(now, message);
    }

    /// The phases in order; returns the boot options, or the error of a fatal phase.
    fn boot_sequence(&mut self) -> anyhow::Result<BootOptions> {
        let mut options = BootOptions::default();
        for phase in Self::PHASES {
            let phase_start = self.clock.uptime();
            let result = catch_unwind(AssertUnwindSafe(|| (phase.step)(self, &mut options)));
            let elapsed = self.clock.uptime().saturating_sub(phase_start);
            let mut report = BootPhase::new(
                phase.name,
                u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            );
            let (error, fatal) = match result {
                Ok(Ok(())) => {
                    self.phases.push(report);
                    self.log(format_args!(
                        "phase {}: ok ({} ms)",
                        phase.name,
                        millis_1(elapsed)
                    ));
                    continue;
                }
                Ok(Err(error)) => (error, phase.fatal),
                // A panic is a bug: nothing after it can be trusted, so it is always fatal.
                Err(panic) => (anyhow!("panic: {}", panic_message(&*panic)), true),
            };
            self.log(format_args!("phase {}: FAILED: {error:#}", phase.name));
            report.error = Some(format!("{error:#}"));
            self.phases.push(report);
            if fatal {
                return Err(error.context(format!("phase {} failed", phase.name)));
            }
        }
        let total = self.clock.uptime().saturating_sub(self.started);
        self.log(format_args!(
            "boot sequence complete in {} s",
            seconds_3(total)
        ));
        Ok(options)
    }

    /// The boot phases, in order.
    const PHASES: [Phase<S, C, W>; 9] = [
        Phase {
            name: "mounts",
            fatal: true,
            step: Self::mount_early,
        },
        Phase {
            name: "cmdline",
            fatal: false,
            step: Self::read_cmdline,
        },
        // After `cmdline`, which gives it the module options and the blacklist.
        Phase {
            name: "coldplug",
            fatal: false,
            step: Self::coldplug,
        },
        // After `coldplug`, which loads the disk drivers, and before the phases that apply
        // the configuration.
        Phase {
            name: "config",
            fatal: false,
            step: Self::find_config,
        },
        Phase {
            name: "hostname",
            fatal: false,
            step: Self::set_hostname,
        },
        // After `hostname`, whose name the DHCP clients send.
        Phase {
            name: "network",
            fatal: false,
            step: Self::configure_network,
        },
        // After `network`, through which the syslog server is reached, and `hostname`, whose
        // name the messages carry; before the boot log is opened, so every line of the boot
        // is still in memory to be sent first.
        Phase {
            name: "log",
            fatal: false,
            step: Self::forward_logs,
        },
        // After `network`: the servers are reached (and their names resolved) through it.
        Phase {
            name: "clock",
            fatal: false,
            step: Self::keep_time,
        },
        Phase {
            name: "settings",
            fatal: false,
            step: Self::report_unapplied_settings,
        },
    ];

    /// The configuration found, if any.
    fn found_config(&self) -> Option<&Config> {
        match self.config.as_ref().map(|report| &report.outcome) {
            Some(Discovery::Found { config, .. }) => Some(config),
            _ => None,
        }
    }

    /// The time zone, and the SNTP client for the configuration's `ntp_servers`.
    fn keep_time(&mut self, _: &mut BootOptions) -> anyhow::Result<()> {
        let Some(host) = self.found_config().map(|config| config.host.clone()) else {
            self.log("clock: no configuration: the clock stays as the firmware set it (UTC)");
            return Ok(());
        };
        self.log(time_zone_line(&host.time_zone));
        if host.ntp_servers.is_empty() {
            self.log("clock: no ntp_servers configured: the clock stays as the firmware set it");
            return Ok(());
        }
        self.system.time_sync().start(&host.ntp_servers)?;
        self.log(format_args!(
            "clock: keeping time with SNTP from {}",
            host.ntp_servers.join(", ")
        ));
        Ok(())
    }

    /// Names every configured setting this host does not apply yet.
    fn report_unapplied_settings(&mut self, _: &mut BootOptions) -> anyhow::Result<()> {
        let lines = self.found_config().map(not_applied).unwrap_or_default();
        for line in lines {
            self.log(format_args!("settings: {line}"));
        }
        Ok(())
    }

    /// Once the web server has had its turn (the rule of `ServiceSpec::yield_to`), and before
    /// libvirtd, held back until then, starts (it reads what it can use when it starts): the
    /// processor's modules and the KVM module, /dev/kvm for QEMU's group, and KVM or TCG, which
    /// the host state then says. The boot sequence leaves this out so that the web server answers
    /// sooner; the VM keeper loads the modules for VM networks and storage.
    fn prepare_virtualization_when_due(&mut self) {
        if self.acceleration.is_some()
            || !self
                .supervisor
                .has_gone_first(WEB_SERVICE, self.clock.uptime())
        {
            return;
        }
        let acceleration = match self.probe_settings() {
            Ok(probe) => {
                let preparation = self.system.prepare_virtualization(&probe);
                for line in preparation.lines {
                    self.log(line);
                }
                preparation.acceleration
            }
            Err(error) => {
                self.log(format_args!(
                    "virtualization: TCG (software emulation, many times slower): the KVM \
                     module cannot be loaded: {error:#}"
                ));
                Virtualization::Tcg
            }
        };
        self.acceleration = Some(acceleration);
        self.write_host_state();
        self.supervisor.release(LIBVIRTD_SERVICE);
    }

    /// Reads the kernel command line into the boot options and logs its warnings.
    fn read_cmdline(&mut self, options: &mut BootOptions) -> anyhow::Result<()> {
        let path = self.settings.proc_dir.join("cmdline");
        let cmdline = KernelCmdline::read_from(&path)?;
        *options = cmdline.boot_options();
        self.rescue = options.rescue;
        for warning in &options.warnings {
            self.log(format_args!("cmdline: warning: {warning}"));
        }
        self.cmdline = cmdline;
        Ok(())
    }

    /// Loads the drivers of the devices present and shows the hardware.
    fn coldplug(&mut self, _: &mut BootOptions) -> anyhow::Result<()> {
        let probe = self.probe_settings()?;
        if !probe.enabled {
            self.log(format_args!("coldplug: skipped ({COLDPLUG_KEY}=off)"));
            return Ok(());
        }
        for line in self.system.coldplug(&probe)? {
            self.log(line);
        }
        Ok(())
    }

    /// Starts hotplug, then looks for the configuration on the volumes.
    fn find_config(&mut self, options: &mut BootOptions) -> anyhow::Result<()> {
        // Drivers for devices that appear from now on, so that a USB stick plugged in while
        // discovery waits (`mfv.config_wait=`) becomes a disk it can read.
        self.start_hotplug();
        self.discover_config(options);
        Ok(())
    }

    /// Starts copying the log lines, those of the boot so far first, to the configuration's
    /// syslog server, if it names one; lines wait in memory while the server cannot be
    /// reached.
    fn forward_logs(&mut self, _: &mut BootOptions) -> anyhow::Result<()> {
        let Some(config) = self.found_config() else {
            return Ok(());
        };
        let Some(server) = config.log.remote.clone() else {
            return Ok(());
        };
        let hostname = config.host.hostname.clone();
        self.system.forward_logs(&server, &hostname)?;
        self.log(format_args!("log: forwarding to {server}"));
        Ok(())
    }

    /// The host name from the configuration found, else the default one.
    fn set_hostname(&mut self, _: &mut BootOptions) -> anyhow::Result<()> {
        let configured = match self.config.as_ref().map(|report| &report.outcome) {
            Some(Discovery::Found { config, source }) => {
                Some((config.host.hostname.clone(), source.device.clone()))
            }
            _ => None,
        };
        match configured {
            Some((hostname, device)) => {
                self.log(format_args!(
                    "hostname: {hostname} (from the configuration on {})",
                    device.display()
                ));
                self.system.set_hostname(&hostname)
            }
            None => {
                let hostname = self.settings.hostname.clone();
                self.system.set_hostname(&hostname)
            }
        }
    }

    /// Brings the network up from `mfv.net=` or the configuration found (mfv-host's network),
    /// logging on the console as it goes.
    fn configure_network(&mut self, options: &mut BootOptions) -> anyhow::Result<()> {
        let found = match self.config.as_ref().map(|report| &report.outcome) {
            Some(Discovery::Found { config, source }) => {
                Some((config.as_ref(), source.device.clone()))
            }
            _ => None,
        };

        // The setup is the console screen's: with `mfv.rescue` a root shell takes the console,
        // and its user sets the network up by hand.
        if found.is_none() && options.net.is_none() && !options.rescue {
            self.setup_timeout = Some(options.setup_timeout.unwrap_or(DEFAULT_SETUP_TIMEOUT));
        }
        let hostname = found.as_ref().map_or_else(
            || self.settings.hostname.clone(),
            |(config, _)| config.host.hostname.clone(),
        );
        let plan = NetworkPlan::choose(
            options.net.as_ref(),
            found.map(|(config, device)| (&config.network, device)),
        );
        let Init {
            system,
            clock,
            console,
            ..
        } = self;
        let configured = configure(system.network(), &plan, &hostname, &mut |line| {
            console.line(clock.uptime(), line);
        });
        // A network that failed to come up can still be changed through the host daemon:
        // nothing of it counts as in effect then.
        let in_effect = configured.as_ref().cloned().unwrap_or_default();
        let mut live = LiveNetwork::new(in_effect, &hostname);
        if let (NetworkPlan::Config { network, .. }, Ok(_)) = (&plan, &configured) {
            live = live.described_by(network.clone());
        }
        let owner = NetworkOwner::new(live);
        let files = owner.state_files(&self.settings.run_dir);
        self.network = Some(owner);
        self.write_network_files(files);
        configured.map(|_| ()).map_err(anyhow::Error::from)
    }

    /// Runs config discovery with the boot options, prints its provenance report line by line
    /// and keeps the outcome for the later phases. Finding nothing usable is not an error: the
    /// host boots without a configuration and says that setup is needed.
    fn discover_config(&mut self, options: &BootOptions) {
        // Without `mfv.config_wait=`, discovery keeps looking (at most 10 s) while USB mass
        // storage present at power-on is still becoming disks.
        let params = with_usb_storage_settling(
            DiscoveryParams {
                sysfs_root: self.settings.sysfs_root.clone(),
                dev_root: self.settings.dev_dir.clone(),
                run_dir: self.settings.run_dir.clone(),
                ..DiscoveryParams::from_boot_options(options)
            },
            &self.settings.sysfs_root,
        );
        let report = self.system.discover_config(&params);
        self.show_config_report(&report);
        if !matches!(report.outcome, Discovery::Found { .. }) {
            self.log(SETUP_NEEDED);
        }
        self.config = Some(report);
    }

    /// Logs discovery's provenance report line by line and publishes it for the console.
    fn show_config_report(&mut self, report: &DiscoveryReport) {
        let text = report.to_string();
        for line in text.lines() {
            self.log(line);
        }
        let published = self.settings.run_dir.join(CONFIG_REPORT_FILE);
        if let Err(error) = self.system.write_run_file(&published, &text) {
            self.log(format_args!(
                "config: the console screen will not show this report: {error:#}"
            ));
        }
    }

    /// What driver loading needs: paths, and the command line's module options.
    fn probe_settings(&self) -> anyhow::Result<ProbeSettings> {
        let modules_dir = modules_dir(&self.settings.proc_dir, &self.settings.modules_root)?;
        let roots = mfv_probe::SystemRoots {
            sysfs: self.settings.sysfs_root.clone(),
            proc: self.settings.proc_dir.clone(),
            dev: self.settings.dev_dir.clone(),
        };
        Ok(ProbeSettings::from_cmdline(
            &self.cmdline,
            roots,
            &modules_dir,
        ))
    }

    /// Starts loading drivers for devices that appear from now on; a failure is logged and
    /// the host runs on without hotplug.
    fn start_hotplug(&mut self) {
        let probe = match self.probe_settings() {
            Ok(probe) => probe,
            Err(error) => {
                self.log(format_args!("hotplug: not started: {error:#}"));
                return;
            }
        };
        if !probe.enabled {
            self.log(format_args!("hotplug: not started ({COLDPLUG_KEY}=off)"));
            return;
        }
        match self.system.start_hotplug(&probe) {
            Ok(()) => self.log("hotplug: listening for kernel uevents"),
            Err(error) => self.log(format_args!("hotplug: not started: {error:#}")),
        }
    }

    /// Mounts what mountinfo does not already show; tries every mount, reports all failures.
    fn mount_early(&mut self, _: &mut BootOptions) -> anyhow::Result<()> {
        let mut present = mounts::mount_points(&self.settings.proc_dir);
        let mut left_alone = Vec::new();
        let mut failures = Vec::new();
        for mount in &EARLY_MOUNTS {
            if present.iter().any(|point| point == Path::new(mount.target)) {
                left_alone.push(mount.target);
                continue;
            }
            match self.system.mount(mount) {
                // Before /proc, mountinfo could not tell what else is mounted: read it again.
                Ok(()) if mount.fstype == "proc" => {
                    present = mounts::mount_points(&self.settings.proc_dir);
                }
                Ok(()) => {}
                Err(error) => failures.push(format!("{error:#}")),
            }
        }
        if !left_alone.is_empty() {
            self.log(format_args!(
                "mounts: already mounted, left alone: {}",
                left_alone.join(" ")
            ));
        }
        if !failures.is_empty() {
            bail!(
                "{} of {} mounts failed: {}",
                failures.len(),
                EARLY_MOUNTS.len(),
                failures.join("; ")
            );
        }
        Ok(())
    }

    /// The fatal path: log, with `mfv.rescue` a rescue shell if there is one, then halt
    /// (PID 1) or give up.
    fn fatal(&mut self, error: &anyhow::Error) -> RunEnd {
        self.log(format_args!("fatal: {error:#}"));
        // The boot may have failed before the `cmdline` phase read the command line.
        let rescue = self.rescue
            || KernelCmdline::read_from(&self.settings.proc_dir.join("cmdline"))
                .is_ok_and(|cmdline| cmdline.boot_options().rescue);
        if !rescue {
            self.log("no rescue shell: boot with mfv.rescue on the kernel command line for one");
        } else if self.settings.shell.exists() {
            // The fatal path must reach the halt even if the rescue shell code panics.
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.rescue_shell())) {
                self.log(format_args!(
                    "rescue shell: panic: {}",
                    panic_message(&*panic)
                ));
            }
        } else {
            let message = format!("rescue shell: {} not found", self.settings.shell.display());
            self.log(message);
        }
        if self.settings.is_pid1 {
            return self.shutdown(ShutdownRequest {
                action: ShutdownAction::Halt,
                requested_by: "fatal error",
            });
        }
        self.log("fatal error: not PID 1, exiting without shutting down");
        RunEnd::Failed
    }

    fn rescue_shell(&mut self) {
        self.log("rescue shell: exit it to halt");
        let shell = self.settings.shell.clone();
        let console = self.settings.console.clone();
        let result = self
            .system
            .spawn_on_console(&ConsoleProgram::bare(shell), &console)
            .and_then(|pid| self.system.wait_child(pid));
        match result {
            Ok(status) => self.log(format_args!("rescue shell exited ({status})")),
            Err(error) => self.log(format_args!("rescue shell: {error:#}")),
        }
    }

    /// The main loop after the boot: keeps the console screen (or with `mfv.rescue` a shell)
    /// on the console, reaps zombies, and returns the first shutdown a signal asks for.
    fn supervise(&mut self, signals: &mut impl SignalSource) -> anyhow::Result<ShutdownRequest> {
        let mut services = self.settings.services.clone();
        if let Some(config) = self.found_config() {
            services
                .iter_mut()
                .for_each(|service| configure_service(service, config));
        }
        self.publish_web_port(&services);
        self.supervisor =
            Supervisor::new(services, &self.settings.run_dir).context("the host's services")?;
        if let Some(timeout) = self.setup_timeout {
            let Init { clock, console, .. } = self;
            let fallback = SetupFallback::start(clock.uptime(), timeout, &mut |line| {
                console.line(clock.uptime(), line);
            });
            self.setup = Some(fallback);
            self.publish_setup_state();
        }
        // The services first: the host daemon's start is the longest way to the web page, and
        // the power button and the console take their turns while it loads.
        self.supervisor.hold(LIBVIRTD_SERVICE);
        self.prepare_virtualization_when_due();
        self.step_services();
        self.watch_power_button();
        let mut consoles = self.console_children();
        for shell in &mut consoles {
            if shell.program.path.exists() {
                self.start_console_shell(shell);
            } else {
                let message = format!(
                    "{}: {} not found, none started",
                    shell.what,
                    shell.program.path.display()
                );
                self.log(message);
            }
        }
        loop {
            let now = self.clock.uptime();
            let timeout = consoles
                .iter()
                .map(|shell| shell.restart_at.map(|at| at.saturating_sub(now)))
                .chain([
                    self.supervisor.next_wakeup(now),
                    self.network
                        .as_ref()
                        .and_then(NetworkOwner::deadline)
                        .map(|at| at.saturating_sub(now)),
                    self.setup
                        .as_ref()
                        .and_then(SetupFallback::wakeup)
                        .map(|at| at.saturating_sub(now)),
                ])
                .flatten()
                .min();
            if let Some(signal) = signals.next(timeout)? {
                if let Some(request) = crate::signals::request_for_signal(signal) {
                    return Ok(request);
                }
                if signal == nix::sys::signal::Signal::SIGCHLD {
                    self.reap(&mut consoles);
                }
                if signal == nix::sys::signal::Signal::SIGHUP {
                    self.restart_requested_services();
                    self.serve_network_request();
                    self.adopt_saved_setup();
                }
            }
            self.expire_network_change();
            self.step_setup();
            for shell in &mut consoles {
                if shell.restart_at.is_some_and(|at| self.clock.uptime() >= at) {
                    self.start_console_shell(shell);
                }
            }
            self.prepare_virtualization_when_due();
            self.step_services();
        }
    }

    /// Publishes the web server's HTTPS port among `services`, for the console.
    fn publish_web_port(&mut self, services: &[ServiceSpec]) {
        let https_port = services
            .iter()
            .find(|service| service.name == WEB_SERVICE)
            .and_then(|web| web.listen.first())
            .map(std::net::SocketAddr::port);
        if let Some(port) = https_port {
            let path = self.settings.run_dir.join(WEB_PORT_FILE);
            if let Err(error) = self.system.write_run_file(&path, &format!("{port}\n")) {
                self.log(format_args!(
                    "web: the console will not show the web server's port: {error:#}"
                ));
            }
        }
    }

    /// Takes DHCP on the first card with link once nobody chose a network in time.
    fn step_setup(&mut self) {
        let now = self.clock.uptime();
        if self
            .setup
            .as_ref()
            .and_then(SetupFallback::wakeup)
            .is_none_or(|at| now < at)
        {
            return;
        }
        let run_dir = self.settings.run_dir.clone();
        let holder = match self.system.setup_lock_holder(&run_dir) {
            Ok(holder) => holder,
            Err(error) => {
                self.log(format_args!(
                    "setup: cannot tell whether a console sets up: {error:#}"
                ));
                None
            }
        };
        let Init {
            system,
            clock,
            console,
            network,
            setup,
            ..
        } = self;
        let (Some(owner), Some(fallback)) = (network.as_mut(), setup.as_mut()) else {
            return;
        };
        let (files, changed) = fallback.step(
            now,
            holder,
            owner,
            &run_dir,
            system.network(),
            &mut |line| {
                console.line(clock.uptime(), line);
            },
        );
        self.write_network_files(files);
        if changed {
            self.publish_setup_state();
        }
    }

    /// Publishes where the setup stands, for the console screen.
    fn publish_setup_state(&mut self) {
        let Some(state) = self.setup.as_ref().map(|setup| setup.state().to_json()) else {
            return;
        };
        let path = self.settings.run_dir.join(SETUP_STATE_FILE);
        if let Err(error) = self.system.write_run_file(&path, &state) {
            self.log(format_args!(
                "setup: the console will not show the setup's state: {error:#}"
            ));
        }
    }

    /// Starts reading the power buttons; a failure is logged and the host runs on.
    fn watch_power_button(&mut self) {
        let watched = self
            .probe_settings()
            .and_then(|probe| self.system.watch_power_button(&probe));
        match watched {
            Ok(line) => self.log(line),
            Err(error) => self.log(format_args!("power button: not watched: {error:#}")),
        }
    }

    /// Opens the boot log and publishes the boot report and how VMs run, for the host daemon.
    fn publish_host_state(&mut self) {
        let run_dir = self.settings.run_dir.clone();
        if let Err(error) = self.system.open_boot_log(&run_dir) {
            self.log(format_args!("boot log: not kept: {error:#}"));
        }
        self.write_host_state();
    }

    /// Publishes the boot report (with the configuration in use) and how VMs run.
    fn write_host_state(&mut self) {
        let mut boot = BootReport::new(
            self.config
                .as_ref()
                .map_or(ConfigProvenance::NotFound, provenance),
        );
        boot.phases = self.phases.clone();
        let state = HostState {
            boot,
            // Until PID 1 has prepared the host for VMs, once the web server answers.
            virtualization: self.acceleration.unwrap_or(Virtualization::Pending),
        };
        let path = self.settings.run_dir.join(HOST_STATE_FILE);
        let written = host_state_json(&state)
            .map_err(anyhow::Error::from)
            .and_then(|json| self.system.write_run_file(&path, &json));
        if let Err(error) = written {
            self.log(format_args!("boot report: not published: {error:#}"));
        }
    }

    /// Restarts the services the host daemon asked for.
    fn restart_requested_services(&mut self) {
        let run_dir = self.settings.run_dir.clone();
        for name in self.system.take_restart_requests(&run_dir) {
            let now = self.clock.uptime();
            let lines = self.supervisor.restart(&name, now, &mut self.system);
            self.log_services(lines);
        }
    }

    /// Carries out the network request the host daemon left, if any, and writes the answer.
    fn serve_network_request(&mut self) {
        let run_dir = self.settings.run_dir.clone();
        if let Some(taken) = self.system.take_network_request(&run_dir) {
            let kept_before = self.network.as_ref().map(NetworkOwner::kept_changes);
            self.network_step(|owner, network, now, log| {
                owner.serve(&run_dir, taken, network, now, log)
            });
            let kept_now = self.network.as_ref().map(NetworkOwner::kept_changes);
            if kept_now > kept_before {
                self.network_chosen();
            }
        }
    }

    /// A network change was kept: the setup, if there is one, has its network.
    fn network_chosen(&mut self) {
        let Init {
            clock,
            console,
            setup,
            ..
        } = self;
        let Some(fallback) = setup.as_mut() else {
            return;
        };
        if fallback.network_chosen(&mut |line| console.line(clock.uptime(), line)) {
            self.publish_setup_state();
        }
    }

    /// Rolls the pending network change back once its deadline has passed.
    fn expire_network_change(&mut self) {
        let run_dir = self.settings.run_dir.clone();
        self.network_step(|owner, network, now, log| {
            owner
                .expire(&run_dir, network, now, log)
                .into_iter()
                .collect()
        });
    }

    /// Runs `step` on the network the `network` phase left (nothing before it), with the
    /// time and the console, then writes the files it returns for the host daemon.
    fn network_step(
        &mut self,
        step: impl FnOnce(
            &mut NetworkOwner,
            &mut dyn Network,
            Duration,
            &mut dyn FnMut(String),
        ) -> Vec<HandoverFile>,
    ) {
        let Init {
            system,
            clock,
            console,
            network,
            ..
        } = self;
        let Some(owner) = network.as_mut() else {
            return;
        };
        let now = clock.uptime();
        let files = step(owner, system.network(), now, &mut |line| {
            console.line(clock.uptime(), line);
        });
        self.write_network_files(files);
    }

    /// Writes the network hand-over files for the host daemon.
    fn write_network_files(&mut self, files: Vec<HandoverFile>) {
        for file in files {
            if let Err(error) = self.system.write_run_file(&file.path, &file.contents) {
                self.log(format_args!("net: cannot tell the host daemon: {error:#}"));
            }
        }
    }

    /// Starts the services whose turn it is; logs and publishes what changed.
    fn step_services(&mut self) {
        let now = self.clock.uptime();
        let lines = self.supervisor.step(now, &mut self.system);
        if !lines.is_empty() {
            self.log_services(lines);
        }
    }

    /// Logs the supervisor's lines and publishes the services' status.
    fn log_services(&mut self, lines: Vec<String>) {
        for line in lines {
            self.log(line);
        }
        if let Err(error) = self.supervisor.publish(&mut self.system) {
            self.log(format_args!("services: status not published: {error:#}"));
        }
    }

    /// The console screen on every console the kernel writes to (or on the console, when it
    /// cannot say) or, with `mfv.rescue`, the shell on the console (which it is told about).
    fn console_children(&mut self) -> Vec<ConsoleChild> {
        let child = |what, program, device| ConsoleChild {
            what,
            program,
            device,
            pid: None,
            started_at: None,
            restart_at: None,
            announced: false,
        };
        if self.rescue {
            self.log(
                "console: mfv.rescue: a root shell without login, as the kernel command line asks",
            );
            let shell = ConsoleProgram::bare(&self.settings.shell);
            return vec![child("console shell", shell, self.settings.console.clone())];
        }
        let mut devices = self
            .system
            .active_consoles(&self.settings.sysfs_root, &self.settings.dev_dir);
        if devices.is_empty() {
            devices.push(self.settings.console.clone());
        }
        devices
            .into_iter()
            .map(|device| {
                child(
                    "console screen",
                    self.settings.console_screen.clone(),
                    device,
                )
            })
            .collect()
    }

    fn start_console_shell(&mut self, shell: &mut ConsoleChild) {
        let now = self.clock.uptime();
        let console = shell.device.clone();
        match self.system.spawn_on_console(&shell.program, &console) {
            Ok(pid) => {
                shell.pid = Some(pid);
                shell.started_at = Some(now);
                shell.restart_at = None;
                if !shell.announced {
                    shell.announced = true;
                    self.log(format_args!(
                        "{} started on {}",
                        shell.what,
                        console.display()
                    ));
                }
            }
            Err(error) => {
                shell.restart_at = Some(now + self.settings.respawn_interval);
                self.log(format_args!(
                    "{}: {error:#}; trying again in {} s",
                    shell.what,
                    seconds_3(self.settings.respawn_interval)
                ));
            }
        }
    }

    /// Reaps every zombie; schedules a restart when a console program is among them.
    fn reap(&mut self, consoles: &mut [ConsoleChild]) {
        for exit in self.system.reap_children().exited {
            let now = self.clock.uptime();
            if let Some(lines) = self.supervisor.exited(&exit, now) {
                self.log_services(lines);
                continue;
            }
            let Some(shell) = consoles
                .iter_mut()
                .find(|shell| shell.pid == Some(exit.pid))
            else {
                continue;
            };
            shell.pid = None;
            let now = self.clock.uptime();
            let earliest = shell
                .started_at
                .map_or(now, |at| at + self.settings.respawn_interval);
            let restart_at = earliest.max(now);
            shell.restart_at = Some(restart_at);
            let delay = restart_at - now;
            if delay.is_zero() {
                self.log(format_args!(
                    "{} exited ({}), restarting",
                    shell.what, exit.status
                ));
            } else {
                self.log(format_args!(
                    "{} exited ({}), restarting in {} s",
                    shell.what,
                    exit.status,
                    seconds_3(delay)
                ));
            }
        }
    }

    /// Stops every process, syncs, unmounts, and calls reboot(2).
    pub(crate) fn shutdown(&mut self, request: ShutdownRequest) -> RunEnd {
        let action = request.action;
        self.log(format_args!(
            "shutdown: {action} requested by {}",
            request.requested_by
        ));
        if !self.supervisor.is_empty() {
            let lines = self.supervisor.stop(&mut self.system, &self.clock);
            self.log_services(lines);
        }
        self.stop_processes();
        self.system.sync();
        self.unmount_all();
        self.system.sync();
        self.log(format_args!("shutdown: {action} now"));
        match self.system.reboot(action) {
            Ok(()) => RunEnd::ShutDown(action),
            Err(error) => {
                self.log(format_args!("shutdown: {error:#}"));
                RunEnd::ShutdownFailed(action)
            }
        }
    }

    /// SIGTERM, SIGHUP and SIGCONT to all, a grace period while children remain, then SIGKILL
    /// to all. SIGHUP ends interactive shells, which ignore SIGTERM; SIGCONT wakes stopped jobs
    /// so that they see the other two.
    fn stop_processes(&mut self) {
        use nix::sys::signal::Signal;

        const POLL: Duration = Duration::from_millis(20);
        for signal in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGCONT] {
            if let Err(error) = self.system.signal_all(signal) {
                self.log(format_args!("shutdown: {error:#}"));
            }
        }
        let deadline = self.clock.uptime() + self.settings.stop_grace;
        while self.system.reap_children().children_left {
            if self.clock.uptime() >= deadline {
                self.log(format_args!(
                    "shutdown: processes still running after {} s, sending SIGKILL",
                    seconds_3(self.settings.stop_grace)
                ));
                break;
            }
            self.clock.sleep(POLL);
        }
        if let Err(error) = self.system.signal_all(Signal::SIGKILL) {
            self.log(format_args!("shutdown: {error:#}"));
        }
        let deadline = self.clock.uptime() + self.settings.stop_grace;
        while self.system.reap_children().children_left && self.clock.uptime() < deadline {
            self.clock.sleep(POLL);
        }
    }

    /// Unmounts in reverse mount order; what cannot be unmounted is remounted read-only.
    fn unmount_all(&mut self) {
        let points = mounts::mount_points(&self.settings.proc_dir);
        let (mut unmounted, mut read_only, mut left) = (0, 0, 0);
        for point in points.iter().rev() {
            if point != Path::new("/") && self.system.unmount(point).is_ok() {
                unmounted += 1;
                continue;
            }
            match self.system.remount_read_only(point) {
                Ok(()) => read_only += 1,
                Err(error) => {
                    left += 1;
                    self.log(format_args!("shutdown: {error:#}"));
                }
            }
        }
        self.log(format_args!(
            "shutdown: file systems: {unmounted} unmounted, {read_only} remounted read-only, \
             {left} left as they were"
        ));
    }
}

/// The message of a panic payload (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use nix::sys::signal::Signal;
    use nix::unistd::Pid;
    use tempfile::TempDir;

    use super::*;
    use crate::fake::{FIRST_PID, FakeClock, FakeSystem, ScriptedSignals};
    use crate::services::Readiness;
    use crate::system::{ChildExit, ExitStatus, Reaped};
    use mfv_config::cmdline::ConfigLocator;
    use mfv_config::discovery::{Absence, CandidateReport, ConfigSource, Verdict};
    use mfv_host::network::RecordingNetwork;

    const MOUNTINFO_STAGE2: &str = "\
1 0 8:1 / / rw,relatime - ext4 /dev/sda1 rw
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
23 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
24 1 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw,mode=755
";

    /// The kernel release in the fixture's `proc/sys/kernel/osrelease`.
    const RELEASE: &str = "6.1.0-test";

    /// A fixture tree: `proc/cmdline`, `proc/sys/kernel/osrelease`, optionally
    /// `proc/self/mountinfo` and `bin/sh`.
    struct Fixture {
        _dir: TempDir,
        settings: Settings,
    }

    fn fixture(
        cmdline: Option<&str>,
        mountinfo: Option<&str>,
        shell: bool,
        is_pid1: bool,
    ) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let proc_dir = dir.path().join("proc");
        std::fs::create_dir_all(proc_dir.join("self")).unwrap();
        if let Some(cmdline) = cmdline {
            std::fs::write(proc_dir.join("cmdline"), format!("{cmdline}\n")).unwrap();
        }
        if let Some(mountinfo) = mountinfo {
            std::fs::write(proc_dir.join("self/mountinfo"), mountinfo).unwrap();
        }
        std::fs::create_dir_all(proc_dir.join("sys/kernel")).unwrap();
        std::fs::write(
            proc_dir.join("sys/kernel/osrelease"),
            format!("{RELEASE}\n"),
        )
        .unwrap();
        let shell_path = dir.path().join("bin/sh");
        let screen_path = dir.path().join("init");
        if shell {
            std::fs::create_dir_all(dir.path().join("bin")).unwrap();
            std::fs::write(&shell_path, "").unwrap();
            std::fs::write(&screen_path, "").unwrap();
        }
        let settings = Settings {
            proc_dir,
            sysfs_root: PathBuf::from("/sys"),
            dev_dir: PathBuf::from("/dev"),
            run_dir: PathBuf::from("/run/mfv"),
            modules_root: PathBuf::from("/lib/modules"),
            shell: shell_path,
            console_screen: ConsoleProgram {
                path: screen_path,
                args: vec![CONSOLE_SCREEN_ARG.to_string()],
            },
            console: PathBuf::from("/dev/console"),
            hostname: DEFAULT_HOSTNAME.to_string(),
            is_pid1,
            stop_grace: Duration::from_secs(2),
            respawn_interval: Duration::from_secs(1),
            services: Vec::new(),
        };
        Fixture {
            _dir: dir,
            settings,
        }
    }

    struct Outcome {
        end: RunEnd,
        output: String,
        /// The log messages without their time stamps (the banner excluded).
        messages: Vec<String>,
        calls: Vec<String>,
        /// What the network phase asked of the network.
        network_calls: Vec<String>,
        /// The servers of each SNTP start.
        time_sync_starts: Vec<Vec<String>>,
        timeouts: Vec<Option<Duration>>,
        /// The last contents of each runtime file written.
        run_files: std::collections::BTreeMap<PathBuf, String>,
    }

    impl Outcome {
        fn has(&self, message: &str) -> bool {
            self.messages.iter().any(|m| m == message)
        }

        fn calls_like(&self, prefix: &str) -> Vec<&str> {
            self.calls
                .iter()
                .filter(|c| c.starts_with(prefix))
                .map(String::as_str)
                .collect()
        }
    }

    /// Checks the `[sssss.uuuuuu] mfv-init: ` prefix and returns the message after it.
    fn strip_stamp(line: &str) -> String {
        let (stamp, message) = line
            .split_once("] mfv-init: ")
            .unwrap_or_else(|| panic!("not a log line: {line:?}"));
        let stamp = stamp.strip_prefix('[').unwrap();
        let (secs, micros) = stamp.split_once('.').unwrap();
        assert!(secs.len() >= 5, "{line:?}");
        assert!(
            secs.trim_start().bytes().all(|b| b.is_ascii_digit()),
            "{line:?}"
        );
        assert!(
            micros.len() == 6 && micros.bytes().all(|b| b.is_ascii_digit()),
            "{line:?}"
        );
        message.to_string()
    }

    fn run_with(
        fixture: &Fixture,
        system: FakeSystem,
        signals: anyhow::Result<&[Option<Signal>]>,
    ) -> Outcome {
        let clock = FakeClock::new(Duration::from_millis(1_500), Duration::from_micros(100));
        let mut init = Init::new(system, clock.clone(), Vec::new(), fixture.settings.clone());
        let (end, timeouts) = match signals {
            Ok(script) => {
                let mut scripted = ScriptedSignals::new(&clock, script);
                let end = init.run(Ok(&mut scripted));
                (end, scripted.timeouts)
            }
            Err(error) => (init.run(Err::<ScriptedSignals, _>(error)), Vec::new()),
        };
        let output = String::from_utf8(init.console.output().clone()).unwrap();
        let mut lines = output.lines();
        let banner = lines.next().unwrap();
        assert!(banner.starts_with("Minifed-Virt mfv-init "), "{banner}");
        let messages = lines.map(strip_stamp).collect();
        Outcome {
            end,
            output,
            messages,
            calls: init.system.calls,
            run_files: init.system.run_files,
            network_calls: init.system.network.calls,
            time_sync_starts: init.system.time_sync.started,
            timeouts,
        }
    }

    fn run(fixture: &Fixture, system: FakeSystem, script: &[Option<Signal>]) -> Outcome {
        run_with(fixture, system, Ok(script))
    }

    #[test]
    fn halt_poweroff_boot_logs_every_phase_in_the_exact_format() {
        let fixture = fixture(
            Some("console=ttyS0 usb-storage.delay_use=0 mfv.halt=poweroff"),
            None,
            true,
            true,
        );
        let system = FakeSystem {
            coldplug_lines: vec![
                "coldplug: settled after 2 passes in 41 ms: 9 devices, 1 modules loaded, \
                 0 failed, 0 blacklisted, 0 without driver"
                    .to_string(),
                "  loaded e1000 for pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"
                    .to_string(),
                "nic: eth0 mac=52:54:00:12:34:56 driver=e1000 bus=pci carrier=yes \
                 speed=1000Mbit/s kind=physical"
                    .to_string(),
            ],
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            outcome.output,
            format!(
                "Minifed-Virt mfv-init {version} (kernel uptime 1.500 s)\n\
                 [    1.500300] mfv-init: phase mounts: ok (0.1 ms)\n\
                 [    1.500600] mfv-init: phase cmdline: ok (0.1 ms)\n\
                 [    1.500800] mfv-init: coldplug: settled after 2 passes in 41 ms: 9 devices, \
                 1 modules loaded, 0 failed, 0 blacklisted, 0 without driver\n\
                 [    1.500900] mfv-init:   loaded e1000 for \
                 pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n\
                 [    1.501000] mfv-init: nic: eth0 mac=52:54:00:12:34:56 driver=e1000 bus=pci \
                 carrier=yes speed=1000Mbit/s kind=physical\n\
                 [    1.501200] mfv-init: phase coldplug: ok (0.4 ms)\n\
                 [    1.501400] mfv-init: hotplug: listening for kernel uevents\n\
                 [    1.501500] mfv-init: config: no configuration found\n\
                 [    1.501600] mfv-init: config: no usable configuration; setup is needed\n\
                 [    1.501800] mfv-init: phase config: ok (0.4 ms)\n\
                 [    1.502100] mfv-init: phase hostname: ok (0.1 ms)\n\
                 [    1.502300] mfv-init: net: lo up\n\
                 [    1.502400] mfv-init: net: not configured (no mfv.net= and no configuration): \
                 loopback only\n\
                 [    1.502600] mfv-init: phase network: ok (0.3 ms)\n\
                 [    1.502900] mfv-init: phase log: ok (0.1 ms)\n\
                 [    1.503100] mfv-init: clock: no configuration: the clock stays as the \
                 firmware set it (UTC)\n\
                 [    1.503300] mfv-init: phase clock: ok (0.2 ms)\n\
                 [    1.503600] mfv-init: phase settings: ok (0.1 ms)\n\
                 [    1.503800] mfv-init: boot sequence complete in 0.003 s\n\
                 [    1.503900] mfv-init: shutdown: poweroff requested by mfv.halt\n\
                 [    1.504200] mfv-init: shutdown: file systems: 0 unmounted, 0 remounted \
                 read-only, 0 left as they were\n\
                 [    1.504300] mfv-init: shutdown: poweroff now\n"
            )
        );
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
        assert_eq!(
            outcome.calls,
            [
                "seed-random",
                "disable-cad",
                "mount proc /proc - MsFlags(MS_NOSUID | MS_NODEV | MS_NOEXEC)",
                "mount sysfs /sys - MsFlags(MS_NOSUID | MS_NODEV | MS_NOEXEC)",
                "mount devtmpfs /dev mode=0755 MsFlags(MS_NOSUID)",
                "mount devpts /dev/pts mode=0620,ptmxmode=0666 MsFlags(MS_NOSUID | MS_NOEXEC)",
                "mount tmpfs /dev/shm mode=1777 MsFlags(MS_NOSUID | MS_NODEV)",
                "mount tmpfs /run mode=0755 MsFlags(MS_NOSUID | MS_NODEV)",
                "mount tmpfs /tmp mode=1777 MsFlags(MS_NOSUID | MS_NODEV)",
                "coldplug /lib/modules/6.1.0-test [usb-storage.delay_use=0 mfv.halt=poweroff]",
                "start-hotplug /lib/modules/6.1.0-test [usb-storage.delay_use=0 mfv.halt=poweroff]",
                "discover-config locator=- wait=- sysfs=/sys dev=/dev run=/run/mfv",
                "write /run/mfv/config-report (30 bytes)",
                "sethostname minifed",
                "write /run/mfv/network/pending.json (28 bytes)",
                "write /run/mfv/network/in-effect.toml (0 bytes)",
                "kill -1 SIGTERM",
                "kill -1 SIGHUP",
                "kill -1 SIGCONT",
                "reap",
                "kill -1 SIGKILL",
                "reap",
                "sync",
                "sync",
                "reboot poweroff",
            ]
        );
    }

    #[test]
    fn mfv_halt_maps_to_the_reboot_call() {
        for (word, action) in [
            ("poweroff", ShutdownAction::Poweroff),
            ("reboot", ShutdownAction::Reboot),
            ("halt", ShutdownAction::Halt),
        ] {
            let fixture = fixture(Some(&format!("mfv.halt={word}")), None, true, true);
            let outcome = run(&fixture, FakeSystem::default(), &[]);
            assert_eq!(outcome.end, RunEnd::ShutDown(action));
            assert!(outcome.has(&format!("shutdown: {word} requested by mfv.halt")));
            assert!(outcome.has(&format!("shutdown: {word} now")));
            assert_eq!(outcome.calls.last().unwrap(), &format!("reboot {word}"));
            assert!(
                outcome.calls_like("spawn").is_empty(),
                "no shell with mfv.halt"
            );
        }
    }

    #[test]
    fn cmdline_warnings_are_logged_and_the_boot_goes_on() {
        let fixture = fixture(
            Some("mfv.confg=/dev/sdb1 mfv.halt=off mfv.halt=reboot"),
            None,
            false,
            true,
        );
        let outcome = run(&fixture, FakeSystem::default(), &[]);
        assert!(
            outcome
                .has("cmdline: warning: unknown key mfv.confg ignored (did you mean mfv.config?)")
        );
        assert!(
            outcome.has("phase cmdline: ok (0.1 ms)") || outcome.has("phase cmdline: ok (0.2 ms)")
        );
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Reboot));
    }

    #[test]
    fn failed_non_fatal_phases_are_logged_and_the_boot_goes_on() {
        let fixture = fixture(None, None, false, true);
        let system = FakeSystem {
            hostname_fails: true,
            network: RecordingNetwork {
                loopback_fails: true,
                ..RecordingNetwork::default()
            },
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[Some(Signal::SIGTERM)]);
        let cmdline = fixture.settings.proc_dir.join("cmdline");
        let expected_start = [
            "phase mounts: ok (0.1 ms)".to_string(),
            format!(
                "phase cmdline: FAILED: cannot read the kernel command line from {}: \
                 No such file or directory (os error 2)",
                cmdline.display()
            ),
            "phase coldplug: ok (0.1 ms)".to_string(),
            "hotplug: listening for kernel uevents".to_string(),
            "config: no configuration found".to_string(),
            SETUP_NEEDED.to_string(),
            "phase config: ok (0.4 ms)".to_string(),
            "phase hostname: FAILED: sethostname minifed: EPERM: Operation not permitted"
                .to_string(),
            "phase network: FAILED: cannot set lo up: no interface named \"lo\"".to_string(),
            "phase log: ok (0.1 ms)".to_string(),
            "clock: no configuration: the clock stays as the firmware set it (UTC)".to_string(),
            "phase clock: ok (0.2 ms)".to_string(),
            "phase settings: ok (0.1 ms)".to_string(),
        ];
        assert_eq!(outcome.messages[..13], expected_start);
        assert!(outcome.messages[13].starts_with("boot sequence complete in "));
        // Without a web server to go first, the host is prepared for VMs at once.
        let verdict = "virtualization: TCG (software emulation, many times slower): the \
                       processor shows neither VT-x nor AMD-V";
        assert!(outcome.has(verdict), "{:?}", outcome.messages);
        assert!(outcome.has("shutdown: poweroff requested by SIGTERM"));
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    #[test]
    fn fatal_mount_failure_runs_the_rescue_shell_then_halts() {
        let fixture = fixture(Some("mfv.halt=poweroff mfv.rescue"), None, true, true);
        let system = FakeSystem {
            failing_mounts: vec!["/proc", "/tmp"],
            rescue_exit: ExitStatus::Exited(0),
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        let shell = fixture.settings.shell.display();
        let failures = "2 of 7 mounts failed: mount proc on /proc: EPERM: Operation not \
                        permitted; mount tmpfs on /tmp: EPERM: Operation not permitted";
        assert_eq!(
            outcome.messages[..6],
            [
                format!("phase mounts: FAILED: {failures}"),
                format!("fatal: phase mounts failed: {failures}"),
                "rescue shell: exit it to halt".to_string(),
                "rescue shell exited (exit status 0)".to_string(),
                "shutdown: halt requested by fatal error".to_string(),
                "shutdown: file systems: 0 unmounted, 0 remounted read-only, 0 left as they were"
                    .to_string(),
            ]
        );
        assert_eq!(outcome.messages.last().unwrap(), "shutdown: halt now");
        assert!(
            outcome
                .calls
                .contains(&format!("spawn {shell} on /dev/console"))
        );
        assert!(outcome.calls.contains(&format!("wait {FIRST_PID}")));
        assert!(
            outcome.calls_like("sethostname").is_empty(),
            "no phase after a fatal one"
        );
        assert_eq!(outcome.calls.last().unwrap(), "reboot halt");
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));
    }

    #[test]
    fn fatal_error_without_mfv_rescue_halts_without_a_shell() {
        let fixture = fixture(Some("mfv.halt=poweroff"), None, true, true);
        let system = FakeSystem {
            failing_mounts: vec!["/dev"],
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        assert_eq!(
            outcome.messages[2],
            "no rescue shell: boot with mfv.rescue on the kernel command line for one"
        );
        assert!(outcome.calls_like("spawn").is_empty());
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));
    }

    #[test]
    fn fatal_error_without_shell_halts_pid1() {
        let fixture = fixture(Some("mfv.rescue"), None, false, true);
        let system = FakeSystem {
            failing_mounts: vec!["/dev"],
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        assert!(outcome.has(&format!(
            "rescue shell: {} not found",
            fixture.settings.shell.display()
        )));
        assert!(outcome.calls_like("spawn").is_empty());
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));
    }

    #[test]
    fn rescue_shell_that_cannot_start_is_logged_then_halts() {
        let fixture = fixture(Some("mfv.rescue"), None, true, true);
        let system = FakeSystem {
            failing_mounts: vec!["/sys"],
            spawn_failures: 1,
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        assert!(outcome.has(&format!(
            "rescue shell: start {}: ENOEXEC: Exec format error",
            fixture.settings.shell.display()
        )));
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));
    }

    #[test]
    fn fatal_error_when_not_pid1_exits_without_reboot() {
        let fixture = fixture(Some(""), None, false, false);
        let system = FakeSystem {
            failing_mounts: vec!["/proc"],
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        assert_eq!(outcome.end, RunEnd::Failed);
        assert_eq!(
            outcome.messages.last().unwrap(),
            "fatal error: not PID 1, exiting without shutting down"
        );
        assert!(outcome.calls_like("reboot").is_empty());
        assert!(outcome.calls_like("kill").is_empty());
        assert!(outcome.calls_like("disable-cad").is_empty());
    }

    #[test]
    fn a_panic_in_a_phase_is_caught_and_fatal() {
        let fixture = fixture(Some(""), None, false, true);
        let system = FakeSystem {
            hostname_panics: true,
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        assert!(outcome.has("phase hostname: FAILED: panic: hostname exploded"));
        assert!(outcome.has("fatal: phase hostname failed: panic: hostname exploded"));
        assert!(
            !outcome
                .messages
                .iter()
                .any(|m| m.starts_with("boot sequence complete"))
        );
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));
    }

    #[test]
    fn existing_mounts_are_left_alone() {
        let fixture = fixture(
            Some("mfv.halt=poweroff"),
            Some(MOUNTINFO_STAGE2),
            false,
            false,
        );
        let outcome = run(&fixture, FakeSystem::default(), &[]);
        let mounted: Vec<&str> = outcome
            .calls_like("mount ")
            .iter()
            .map(|c| c.split(' ').nth(2).unwrap())
            .collect();
        assert_eq!(mounted, ["/dev/pts", "/dev/shm", "/run", "/tmp"]);
        assert!(outcome.has("mounts: already mounted, left alone: /proc /sys /dev"));
        // Shutdown takes the mounts from the same mountinfo, in reverse order.
        assert_eq!(
            outcome.calls_like("unmount"),
            ["unmount /dev", "unmount /sys", "unmount /proc"]
        );
        assert_eq!(outcome.calls_like("remount-ro"), ["remount-ro /"]);
        assert!(outcome.has(
            "shutdown: file systems: 3 unmounted, 1 remounted read-only, 0 left as they were"
        ));
    }

    #[test]
    fn hotplug_starts_before_the_console_shell_with_the_module_options() {
        let fixture = fixture(Some("e1000.debug=2 mfv.blacklist=floppy"), None, true, true);
        let outcome = run(&fixture, FakeSystem::default(), &[Some(Signal::SIGTERM)]);
        let settings = "/lib/modules/6.1.0-test [e1000.debug=2 mfv.blacklist=floppy]";
        assert_eq!(
            outcome.calls_like("coldplug"),
            [format!("coldplug {settings}")]
        );
        let hotplug = outcome
            .calls
            .iter()
            .position(|call| *call == format!("start-hotplug {settings}"))
            .unwrap();
        let spawn = outcome
            .calls
            .iter()
            .position(|call| call.starts_with("spawn"))
            .unwrap();
        assert!(hotplug < spawn, "{:?}", outcome.calls);
        assert!(outcome.has("hotplug: listening for kernel uevents"));
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    #[test]
    fn coldplug_off_loads_no_driver_at_boot_or_later() {
        let fixture = fixture(Some("mfv.coldplug=off"), None, true, true);
        let outcome = run(&fixture, FakeSystem::default(), &[Some(Signal::SIGTERM)]);
        assert!(outcome.has("coldplug: skipped (mfv.coldplug=off)"));
        assert!(outcome.has("phase coldplug: ok (0.2 ms)"));
        assert!(outcome.has("hotplug: not started (mfv.coldplug=off)"));
        assert!(outcome.calls_like("coldplug").is_empty());
        assert!(outcome.calls_like("start-hotplug").is_empty());
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    #[test]
    fn coldplug_and_hotplug_failures_are_logged_and_the_boot_goes_on() {
        let fixture = fixture(Some(""), None, true, true);
        let system = FakeSystem {
            coldplug_fails: true,
            hotplug_fails: true,
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[Some(Signal::SIGTERM)]);
        assert!(outcome.has("phase coldplug: FAILED: cannot list the devices: /sys/bus"));
        assert!(outcome.has(
            "hotplug: not started: cannot open the uevent socket: EPERM: Operation not permitted"
        ));
        assert!(outcome.has("phase hostname: ok (0.1 ms)"));
        assert_eq!(outcome.calls_like("spawn").len(), 1);
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    #[test]
    fn an_unknown_kernel_release_fails_coldplug_and_hotplug_only() {
        let fixture = fixture(Some(""), None, true, true);
        let osrelease = fixture.settings.proc_dir.join("sys/kernel/osrelease");
        std::fs::remove_file(&osrelease).unwrap();
        let outcome = run(&fixture, FakeSystem::default(), &[Some(Signal::SIGTERM)]);
        let error = format!(
            "cannot read the kernel release from {}",
            osrelease.display()
        );
        assert!(outcome.has(&format!(
            "phase coldplug: FAILED: {error}: No such file or directory (os error 2)"
        )));
        assert!(outcome.has(&format!(
            "hotplug: not started: {error}: No such file or directory (os error 2)"
        )));
        assert!(outcome.calls_like("coldplug").is_empty());
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    #[test]
    fn signals_choose_the_shutdown() {
        for (signal, action, by) in [
            (
                Signal::SIGINT,
                ShutdownAction::Reboot,
                "SIGINT (ctrl-alt-del)",
            ),
            (Signal::SIGTERM, ShutdownAction::Poweroff, "SIGTERM"),
            (Signal::SIGUSR1, ShutdownAction::Halt, "SIGUSR1"),
            (Signal::SIGUSR2, ShutdownAction::Poweroff, "SIGUSR2"),
        ] {
            let fixture = fixture(Some(""), None, true, true);
            let outcome = run(&fixture, FakeSystem::default(), &[Some(signal)]);
            assert!(outcome.has(&format!("shutdown: {action} requested by {by}")));
            assert_eq!(outcome.end, RunEnd::ShutDown(action));
        }
    }

    #[test]
    fn the_host_is_prepared_for_vms_once_the_web_serves_and_before_libvirtd_starts() {
        let mut fixture = fixture(Some(""), None, true, true);
        let service = |name: &str, ready: Readiness| crate::services::ServiceSpec {
            name: name.to_string(),
            program: PathBuf::from(format!("/usr/sbin/{name}")),
            args: Vec::new(),
            user: None,
            ready,
            listen: Vec::new(),
            after: Vec::new(),
            yield_to: Vec::new(),
            stop_grace: Duration::from_secs(5),
        };
        fixture.settings.services = vec![
            service(WEB_SERVICE, Readiness::Notify),
            service(LIBVIRTD_SERVICE, Readiness::Running),
        ];
        let system = FakeSystem {
            notified: vec![WEB_SERVICE.to_string()],
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[None, None, Some(Signal::SIGTERM)]);
        let position = |prefix: &str| {
            outcome
                .calls
                .iter()
                .position(|call| call.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix}: {:?}", outcome.calls))
        };
        let prepared = position("prepare-virtualization");
        assert!(position("spawn service mfv-web") < prepared);
        assert!(prepared < position("spawn service libvirtd"));
        // Until then the host state says the verdict is still to come; then it says it.
        let states: Vec<&str> = outcome
            .calls
            .iter()
            .filter(|call| call.starts_with("write /run/mfv/host.json"))
            .map(String::as_str)
            .collect();
        assert_eq!(states.len(), 2, "{:?}", outcome.calls);
        let state = &outcome.run_files[Path::new("/run/mfv/host.json")];
        assert!(state.contains("\"virtualization\": \"tcg\""), "{state}");
        assert!(outcome.has(
            "virtualization: TCG (software emulation, many times slower): the processor shows \
             neither VT-x nor AMD-V"
        ));
    }

    #[test]
    fn a_host_whose_modules_cannot_be_found_runs_vms_with_tcg_and_says_why() {
        let fixture = fixture(Some(""), None, true, true);
        std::fs::remove_file(fixture.settings.proc_dir.join("sys/kernel/osrelease")).unwrap();
        let outcome = run(&fixture, FakeSystem::default(), &[Some(Signal::SIGTERM)]);
        assert!(outcome.calls_like("prepare-virtualization").is_empty());
        let verdict = outcome
            .messages
            .iter()
            .find(|line| line.starts_with("virtualization: "))
            .unwrap();
        assert!(
            verdict.starts_with(
                "virtualization: TCG (software emulation, many times slower): the KVM module \
                 cannot be loaded: "
            ) && verdict.contains("osrelease"),
            "{verdict}"
        );
        let state = &outcome.run_files[Path::new("/run/mfv/host.json")];
        assert!(state.contains("\"virtualization\": \"tcg\""), "{state}");
    }

    #[test]
    fn services_start_after_the_boot_come_back_after_a_crash_and_stop_first_at_shutdown() {
        let mut fixture = fixture(Some(""), None, true, true);
        fixture.settings.services = vec![crate::services::ServiceSpec {
            name: "libvirtd".to_string(),
            program: PathBuf::from("/usr/sbin/libvirtd"),
            args: Vec::new(),
            user: None,
            ready: Readiness::Running,
            listen: Vec::new(),
            after: Vec::new(),
            yield_to: Vec::new(),
            stop_grace: Duration::from_secs(5),
        }];
        // libvirtd is pid 100, the console screen 101; libvirtd crashes once (pid 102 next),
        // then stops at the first SIGTERM.
        let system = FakeSystem {
            reaps: [
                Reaped {
                    exited: vec![ChildExit {
                        pid: Pid::from_raw(FIRST_PID),
                        status: ExitStatus::Killed(Signal::SIGSEGV),
                    }],
                    children_left: true,
                },
                Reaped {
                    exited: vec![ChildExit {
                        pid: Pid::from_raw(FIRST_PID + 2),
                        status: ExitStatus::Exited(0),
                    }],
                    children_left: true,
                },
            ]
            .into(),
            ..FakeSystem::default()
        };
        let outcome = run(
            &fixture,
            system,
            &[Some(Signal::SIGCHLD), None, Some(Signal::SIGTERM)],
        );
        let services: Vec<&String> = outcome
            .messages
            .iter()
            .filter(|line| line.starts_with("service "))
            .collect();
        assert_eq!(services.len(), 4, "{services:?}");
        assert_eq!(
            services[0],
            &format!("service libvirtd: started (pid {FIRST_PID})")
        );
        assert!(
            services[1].starts_with("service libvirtd: exited (killed by SIGSEGV) after ")
                && services[1].ends_with("; restarting in 1.000 s"),
            "{}",
            services[1]
        );
        assert_eq!(
            services[2],
            &format!("service libvirtd: restarted (pid {})", FIRST_PID + 2)
        );
        assert_eq!(services[3], "service libvirtd: stopped (exit status 0)");
        // The services stop before everything else gets SIGTERM.
        let position = |call: &str| outcome.calls.iter().position(|c| c == call).unwrap();
        assert!(position(&format!("kill {} SIGTERM", FIRST_PID + 2)) < position("kill -1 SIGTERM"));
        // The services start before the console and the power button, which take their turns
        // while the services load.
        let first = |prefix: &str| outcome.calls.iter().position(|c| c.starts_with(prefix));
        assert!(first("spawn service libvirtd").unwrap() < first("watch-power-button").unwrap());
        assert!(
            first("spawn service libvirtd") < first("spawn /"),
            "{:?}",
            outcome.calls
        );
        assert!(
            outcome
                .calls
                .iter()
                .any(|call| call.starts_with("write /run/mfv/services.json")),
            "{:?}",
            outcome.calls
        );
    }

    #[test]
    fn sighup_restarts_the_services_the_daemon_asked_for_and_the_boot_report_is_published() {
        let mut fixture = fixture(Some(""), None, true, true);
        fixture.settings.services = vec![crate::services::ServiceSpec {
            name: "mfv-web".to_string(),
            program: PathBuf::from("/usr/bin/mfv-web"),
            args: Vec::new(),
            user: Some("mfv-web".to_string()),
            ready: Readiness::Running,
            listen: Vec::new(),
            after: Vec::new(),
            yield_to: Vec::new(),
            stop_grace: Duration::from_secs(5),
        }];
        let system = FakeSystem {
            restart_requests: vec!["mfv-web".to_string()],
            ..FakeSystem::default()
        };
        let outcome = run(
            &fixture,
            system,
            &[Some(Signal::SIGHUP), Some(Signal::SIGTERM)],
        );
        assert!(outcome.has("service mfv-web: restarting as asked"));
        let position = |call: &str| outcome.calls.iter().position(|c| c == call);
        let requests = position("take-restart-requests /run/mfv").unwrap();
        let sigterm = position(&format!("kill {FIRST_PID} SIGTERM")).unwrap();
        assert!(requests < sigterm);
        assert!(
            outcome
                .calls
                .iter()
                .any(|call| call.starts_with("write /run/mfv/host.json")),
            "{:?}",
            outcome.calls
        );
    }

    #[test]
    fn sighup_applies_the_network_change_the_daemon_left_and_the_deadline_rolls_it_back() {
        use mfv_host::network::handover::{HANDOVER_VERSION, NetworkAction, NetworkRequest};
        let fixture = fixture(Some("mfv.net=eth0:dhcp"), None, true, true);
        let mut system = FakeSystem::default();
        system.network_requests.push_back(NetworkRequest {
            version: HANDOVER_VERSION,
            request_id: "7-1".to_owned(),
            action: NetworkAction::Apply {
                network_toml: "[[network.interfaces]]\nname = \"eth0\"\nmode = \"static\"\n\
                               addresses = [\"192.0.2.10/24\"]\n"
                    .to_owned(),
                confirm_within_secs: 5,
            },
        });
        // The request, then nothing until the deadline, then SIGTERM.
        let outcome = run(
            &fixture,
            system,
            &[Some(Signal::SIGHUP), None, Some(Signal::SIGTERM)],
        );
        let net: Vec<&String> = outcome
            .messages
            .iter()
            .filter(|line| line.starts_with("net: change 1"))
            .collect();
        assert_eq!(
            net.last().map(|line| line.as_str()),
            Some("net: change 1 rolled back: not confirmed within 5 s"),
            "{net:?}"
        );
        assert!(outcome.has("net: change 1 applied: confirm within 5 s"));
        // The main loop woke up at the deadline.
        assert!(
            outcome.timeouts.iter().flatten().any(|timeout| {
                *timeout > Duration::from_millis(4_900) && *timeout <= Duration::from_secs(5)
            }),
            "{:?}",
            outcome.timeouts
        );
        let writes: Vec<&String> = outcome
            .calls
            .iter()
            .filter(|call| call.starts_with("write /run/mfv/network/"))
            .collect();
        // The boot's state, then the change's (and the answer), then the rollback's.
        let writes: Vec<&str> = writes
            .iter()
            .map(|write| write.split(" (").next().unwrap())
            .collect();
        assert_eq!(
            writes,
            [
                "write /run/mfv/network/pending.json",
                "write /run/mfv/network/in-effect.toml",
                "write /run/mfv/network/pending.json",
                "write /run/mfv/network/in-effect.toml",
                "write /run/mfv/network/answer.json",
                "write /run/mfv/network/pending.json",
            ]
        );
        assert!(
            outcome
                .network_calls
                .iter()
                .any(|call| call == "roll back provisional"),
            "{:?}",
            outcome.network_calls
        );
    }

    /// A host without a configuration whose setup saved `text` on /dev/vdb1, with the web
    /// server and the VM keeper among its services.
    fn saved_setup(text: &str) -> (Fixture, FakeSystem) {
        let mut fixture = fixture(Some(""), None, true, true);
        fixture.settings.services = vec![
            crate::services::ServiceSpec {
                name: WEB_SERVICE.to_string(),
                program: PathBuf::from("/usr/bin/mfv-web"),
                args: Vec::new(),
                user: Some("mfv-web".to_string()),
                ready: Readiness::Running,
                listen: web_listen(443),
                after: Vec::new(),
                yield_to: Vec::new(),
                stop_grace: Duration::from_secs(5),
            },
            crate::services::ServiceSpec {
                name: VM_KEEPER_SERVICE.to_string(),
                program: PathBuf::from("/init"),
                args: Vec::new(),
                user: None,
                ready: Readiness::Running,
                listen: Vec::new(),
                after: Vec::new(),
                yield_to: Vec::new(),
                stop_grace: Duration::from_secs(75),
            },
        ];
        let found = system_with_config(text).discovery.unwrap();
        let not_found = report(Discovery::NotFound, Verdict::NoConfigFile);
        let system = FakeSystem {
            next_discoveries: [not_found, found].into(),
            setups_saved: [Ok(PathBuf::from("/dev/vdb1"))].into(),
            ..FakeSystem::default()
        };
        (fixture, system)
    }

    #[test]
    fn a_saved_setup_is_taken_into_use_and_the_host_state_says_so_before_the_restarts() {
        let (fixture, mut system) = saved_setup(
            "version = 1\n[host]\nhostname = \"vmhost1\"\nvm_shutdown_timeout = 30\n\
             [web]\nport = 8443\n[[network.interfaces]]\nname = \"eth1\"\nmode = \"dhcp\"\n",
        );
        // mfv-web is pid 100, started before the console screen: it stops when asked.
        system.reaps = [Reaped {
            exited: vec![ChildExit {
                pid: Pid::from_raw(FIRST_PID),
                status: ExitStatus::Killed(Signal::SIGTERM),
            }],
            children_left: true,
        }]
        .into();
        let outcome = run(
            &fixture,
            system,
            &[
                Some(Signal::SIGHUP),
                Some(Signal::SIGCHLD),
                None,
                Some(Signal::SIGTERM),
            ],
        );
        assert!(
            outcome.has("setup: taking the configuration saved on /dev/vdb1 into use"),
            "{:?}",
            outcome.messages
        );
        assert!(outcome.has("hostname: vmhost1 (from the configuration on /dev/vdb1)"));
        assert!(
            outcome.has("clock: no ntp_servers configured: the clock stays as the firmware set it")
        );
        assert!(outcome.has(
            "net: the saved network differs from the one in effect, which stays until the next \
             boot (mfv net apply changes it now)"
        ));
        assert!(outcome.has("setup: done: the host runs with its configuration"));
        assert_eq!(
            outcome.calls_like("discover-config"),
            [
                "discover-config locator=- wait=- sysfs=/sys dev=/dev run=/run/mfv",
                "discover-config locator=/dev/vdb1 wait=0ns sysfs=/sys dev=/dev run=/run/mfv",
            ]
        );
        assert_eq!(
            outcome.calls_like("sethostname"),
            ["sethostname minifed", "sethostname vmhost1"]
        );
        let host_state = &outcome.run_files[Path::new("/run/mfv/host.json")];
        assert!(host_state.contains("/dev/vdb1"), "{host_state}");
        assert_eq!(outcome.run_files[Path::new("/run/mfv/web-port")], "8443\n");
        assert!(
            outcome.run_files[Path::new("/run/mfv/setup.json")].contains("network_chosen"),
            "the console leaves the setup screen"
        );
        // The host state is written before the services are asked to restart, so the web
        // server that starts next finds the host set up.
        let adopted = outcome
            .calls
            .iter()
            .position(|call| call.starts_with("take-setup-saved"))
            .unwrap();
        let last_state = adopted
            + outcome.calls[adopted..]
                .iter()
                .position(|call| call.starts_with("write /run/mfv/host.json"))
                .unwrap();
        let web_stop = outcome
            .calls
            .iter()
            .position(|call| call.starts_with("kill ") && call.ends_with(" SIGTERM"))
            .unwrap();
        assert!(last_state < web_stop, "{:?}", outcome.calls);
        assert!(outcome.has("service mfv-web: restarting as asked"));
        assert!(outcome.has("service vm-keeper: restarting as asked"));
        let spawns = outcome.calls_like("spawn service mfv-web");
        assert!(
            spawns
                .first()
                .is_some_and(|spawn| spawn.contains("[listening on [::]:443]")),
            "{spawns:?}"
        );
        assert!(
            spawns
                .last()
                .is_some_and(|spawn| spawn.contains("[listening on [::]:8443]")),
            "{spawns:?}"
        );
    }

    #[test]
    fn a_saved_setup_that_cannot_be_read_or_used_leaves_the_host_in_setup() {
        let (fixture, mut system) = saved_setup("version = 1\n[host]\nhostname = \"h\"\n");
        system.next_discoveries = [
            report(Discovery::NotFound, Verdict::NoConfigFile),
            report(Discovery::NotFound, Verdict::NoConfigFile),
        ]
        .into();
        system.setups_saved = [
            Err(mfv_host::setup_adoption::AdoptionError::Invalid {
                path: PathBuf::from("/run/mfv/setup-saved.json"),
                problem: "expected value at line 1 column 1".to_owned(),
            }),
            Ok(PathBuf::from("/dev/vdb1")),
        ]
        .into();
        let outcome = run(
            &fixture,
            system,
            &[
                Some(Signal::SIGHUP),
                Some(Signal::SIGHUP),
                Some(Signal::SIGTERM),
            ],
        );
        assert!(
            outcome.has(
                "setup: the saved setup cannot be taken into use: /run/mfv/setup-saved.json is \
                 not a saved setup to use: expected value at line 1 column 1"
            ),
            "{:?}",
            outcome.messages
        );
        assert!(outcome.has(
            "setup: the configuration saved on /dev/vdb1 cannot be used (above): the host \
             stays in setup"
        ));
        assert!(!outcome.has("setup: done: the host runs with its configuration"));
        assert!(!outcome.run_files[Path::new("/run/mfv/host.json")].contains("/dev/vdb1"));
        assert!(!outcome.has("service mfv-web: restarting as asked"));
    }

    #[test]
    fn a_saved_setup_on_a_host_with_a_configuration_is_not_taken_into_use() {
        let mut system = system_with_config("version = 1\n[host]\nhostname = \"vmhost1\"\n");
        system.setups_saved = [Ok(PathBuf::from("/dev/vdc1"))].into();
        let outcome = run(
            &fixture(Some(""), None, true, true),
            system,
            &[Some(Signal::SIGHUP), Some(Signal::SIGTERM)],
        );
        assert!(
            outcome.has(
                "setup: the setup saved on /dev/vdc1 is not taken into use: the host runs with \
                 the configuration on /dev/vdb1"
            ),
            "{:?}",
            outcome.messages
        );
        assert_eq!(outcome.calls_like("discover-config").len(), 1);
    }

    /// The setup lines PID 1 logged.
    fn setup_lines(outcome: &Outcome) -> Vec<&str> {
        outcome
            .messages
            .iter()
            .filter(|line| line.starts_with("setup: "))
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn without_a_configuration_nobody_at_the_console_means_dhcp_after_the_setup_timeout() {
        let fixture = fixture(Some("mfv.setup_timeout=5"), None, true, true);
        let system = FakeSystem {
            network: RecordingNetwork {
                nic_with_carrier: Some("eth0".into()),
                ..RecordingNetwork::default()
            },
            ..FakeSystem::default()
        };
        // Nothing until the fallback is due, then SIGTERM.
        let outcome = run(&fixture, system, &[None, Some(Signal::SIGTERM)]);
        assert_eq!(
            setup_lines(&outcome),
            [
                "setup: waiting for an operator at the console; without one, DHCP on the \
                 first network card with link in 5 s",
                "setup: nobody chose a network within 5 s: DHCP on eth0 (the first network \
                 card with link), until a lease arrives",
            ]
        );
        let first_wait = outcome.timeouts[0].unwrap();
        assert!(first_wait > Duration::from_millis(4_900) && first_wait <= Duration::from_secs(5));
        assert!(
            outcome
                .network_calls
                .iter()
                .any(|call| call.starts_with("dhcp eth0")),
            "{:?}",
            outcome.network_calls
        );
        let states: Vec<&str> = outcome.calls_like("write /run/mfv/setup.json");
        assert_eq!(states.len(), 2, "{:?}", outcome.calls);
        assert!(
            outcome
                .calls
                .contains(&"setup-lock-holder /run/mfv".to_owned())
        );
    }

    #[test]
    fn a_setup_lock_or_state_file_that_fails_is_said_and_the_fallback_goes_on() {
        let fixture = fixture(Some("mfv.setup_timeout=5"), None, true, true);
        let system = FakeSystem {
            setup_lock_fails: true,
            failing_run_files: vec![PathBuf::from("/run/mfv/setup.json")],
            network: RecordingNetwork {
                nic_with_carrier: Some("eth0".into()),
                ..RecordingNetwork::default()
            },
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[None, Some(Signal::SIGTERM)]);
        assert!(outcome.has(
            "setup: the console will not show the setup's state: write /run/mfv/setup.json: No \
             space left on device"
        ));
        assert!(outcome.has(
            "setup: cannot tell whether a console sets up: open /run/mfv/setup.lock: Permission \
             denied"
        ));
        assert!(
            setup_lines(&outcome)
                .iter()
                .any(|line| line
                    .starts_with("setup: nobody chose a network within 5 s: DHCP on eth0")),
            "{:?}",
            outcome.messages
        );
    }

    #[test]
    fn the_dhcp_fallback_waits_for_an_operator_answering_at_a_console() {
        let fixture = fixture(Some("mfv.setup_timeout=5"), None, true, true);
        let system = FakeSystem {
            setup_holders: VecDeque::from([Some("ttyS0".to_owned()), None]),
            network: RecordingNetwork {
                nic_with_carrier: Some("eth0".into()),
                ..RecordingNetwork::default()
            },
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[None, None, Some(Signal::SIGTERM)]);
        assert_eq!(
            setup_lines(&outcome)[1..],
            [
                "setup: the setup on ttyS0 is in use: the DHCP fallback waits",
                "setup: nobody chose a network within 5 s: DHCP on eth0 (the first network \
                 card with link), until a lease arrives",
            ]
        );
        let retry = outcome.timeouts[1].unwrap();
        assert!(retry > Duration::from_millis(4_900) && retry <= mfv_host::setup::FALLBACK_RETRY);
    }

    #[test]
    fn a_network_kept_through_the_host_daemon_ends_the_setup_without_a_fallback() {
        use mfv_host::network::handover::{HANDOVER_VERSION, NetworkAction, NetworkRequest};
        let fixture = fixture(Some("mfv.setup_timeout=5"), None, true, true);
        let mut system = FakeSystem::default();
        system.network_requests.push_back(NetworkRequest {
            version: HANDOVER_VERSION,
            request_id: "7-1".to_owned(),
            action: NetworkAction::Apply {
                network_toml: "[[network.interfaces]]\nname = \"eth0\"\n".to_owned(),
                confirm_within_secs: 60,
            },
        });
        system.network_requests.push_back(NetworkRequest {
            version: HANDOVER_VERSION,
            request_id: "7-2".to_owned(),
            action: NetworkAction::Confirm { apply_id: 1 },
        });
        let outcome = run(
            &fixture,
            system,
            &[
                Some(Signal::SIGHUP),
                Some(Signal::SIGHUP),
                Some(Signal::SIGTERM),
            ],
        );
        assert_eq!(
            setup_lines(&outcome)[1..],
            ["setup: the network was chosen: no DHCP fallback"]
        );
        assert!(outcome.has("net: change 1 confirmed"));
        assert_eq!(outcome.calls_like("write /run/mfv/setup.json").len(), 2);
        assert!(outcome.calls_like("setup-lock-holder").is_empty());
        // Nothing left to wait for.
        assert_eq!(outcome.timeouts[2], None);
    }

    #[test]
    fn mfv_net_mfv_rescue_or_a_configuration_skips_the_setup() {
        for cmdline in [
            "mfv.net=eth0:dhcp",
            "mfv.net=eth0:dhcp mfv.setup_timeout=5",
            "mfv.rescue mfv.setup_timeout=5",
        ] {
            let fixture = fixture(Some(cmdline), None, true, true);
            let outcome = run(&fixture, FakeSystem::default(), &[Some(Signal::SIGTERM)]);
            assert!(setup_lines(&outcome).is_empty(), "{:?}", outcome.messages);
            assert!(outcome.calls_like("write /run/mfv/setup.json").is_empty());
            assert_eq!(outcome.timeouts, [None]);
        }
        let fixture = fixture(Some("mfv.setup_timeout=5"), None, true, true);
        let outcome = run(
            &fixture,
            system_with_network_config(),
            &[Some(Signal::SIGTERM)],
        );
        assert!(setup_lines(&outcome).is_empty(), "{:?}", outcome.messages);
        assert!(outcome.calls_like("write /run/mfv/setup.json").is_empty());
    }

    #[test]
    fn the_screen_runs_on_every_console_the_kernel_names() {
        let fixture = fixture(Some(""), None, true, true);
        let system = FakeSystem {
            consoles: vec![PathBuf::from("/dev/tty1"), PathBuf::from("/dev/ttyS0")],
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[Some(Signal::SIGTERM)]);
        let screen = fixture.settings.console_screen.path.display();
        assert_eq!(
            outcome.calls_like("spawn"),
            [
                format!("spawn {screen} --console on /dev/tty1"),
                format!("spawn {screen} --console on /dev/ttyS0")
            ]
        );
        assert!(outcome.has("console screen started on /dev/ttyS0"));
    }

    #[test]
    fn console_shell_is_started_once_and_restarted_at_most_once_a_second() {
        let fixture = fixture(Some("mfv.rescue"), None, true, true);
        let shell_exit = |pid: i32, code: i32| Reaped {
            exited: vec![ChildExit {
                pid: Pid::from_raw(pid),
                status: ExitStatus::Exited(code),
            }],
            children_left: false,
        };
        let orphan = Reaped {
            exited: vec![ChildExit {
                pid: Pid::from_raw(7),
                status: ExitStatus::Killed(Signal::SIGKILL),
            }],
            children_left: true,
        };
        let system = FakeSystem {
            reaps: VecDeque::from([
                orphan,
                shell_exit(FIRST_PID, 0),
                shell_exit(FIRST_PID + 1, 3),
            ]),
            ..FakeSystem::default()
        };
        let script = [
            Some(Signal::SIGCHLD), // an orphan: reaped, shell untouched
            Some(Signal::SIGHUP),  // ignored
            Some(Signal::SIGCHLD), // the shell exits at once: restart waits for 1 s
            None,                  // the wait times out: restart
            Some(Signal::SIGCHLD), // exits again
            None,
            Some(Signal::SIGTERM),
        ];
        let outcome = run(&fixture, system, &script);
        let spawns = outcome.calls_like("spawn");
        assert_eq!(spawns.len(), 3);
        let started: Vec<&String> = outcome
            .messages
            .iter()
            .filter(|m| m.starts_with("console shell"))
            .collect();
        assert_eq!(started.len(), 3, "{started:?}");
        assert_eq!(started[0], "console shell started on /dev/console");
        assert!(
            started[1].starts_with("console shell exited (exit status 0), restarting in 0.99"),
            "{}",
            started[1]
        );
        assert!(started[2].starts_with("console shell exited (exit status 3), restarting in 0.99"));
        // The loop waits forever until a restart is pending, then at most the rest of 1 s
        // (with mfv.rescue there is no setup to wait for).
        assert_eq!(outcome.timeouts[..3], [None, None, None]);
        let pending = outcome.timeouts[3].unwrap();
        assert!(pending > Duration::from_millis(990) && pending <= Duration::from_secs(1));
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    #[test]
    fn the_console_gets_the_screen_and_a_shell_only_with_mfv_rescue() {
        let fixture = fixture(Some(""), None, true, true);
        let outcome = run(&fixture, FakeSystem::default(), &[Some(Signal::SIGTERM)]);
        let screen = fixture.settings.console_screen.path.display();
        assert_eq!(
            outcome.calls_like("spawn"),
            [format!("spawn {screen} --console on /dev/console")]
        );
        assert!(outcome.has("console screen started on /dev/console"));
        assert!(!outcome.messages.iter().any(|m| m.contains("shell")));

        let fixture = fixture_with_rescue();
        let outcome = run(&fixture, FakeSystem::default(), &[Some(Signal::SIGTERM)]);
        let shell = fixture.settings.shell.display();
        assert_eq!(
            outcome.calls_like("spawn"),
            [format!("spawn {shell} on /dev/console")]
        );
        assert!(outcome.has(
            "console: mfv.rescue: a root shell without login, as the kernel command line asks"
        ));
        assert!(outcome.has("console shell started on /dev/console"));
    }

    fn fixture_with_rescue() -> Fixture {
        fixture(Some("mfv.rescue"), None, true, true)
    }

    #[test]
    fn a_shell_past_its_respawn_interval_restarts_at_once() {
        let mut fixture = fixture(Some("mfv.rescue"), None, true, true);
        fixture.settings.respawn_interval = Duration::ZERO;
        let system = FakeSystem {
            reaps: VecDeque::from([Reaped {
                exited: vec![ChildExit {
                    pid: Pid::from_raw(FIRST_PID),
                    status: ExitStatus::Killed(Signal::SIGHUP),
                }],
                children_left: false,
            }]),
            ..FakeSystem::default()
        };
        let script = [Some(Signal::SIGCHLD), Some(Signal::SIGTERM)];
        let outcome = run(&fixture, system, &script);
        assert!(outcome.has("console shell exited (killed by SIGHUP), restarting"));
        assert_eq!(outcome.calls_like("spawn").len(), 2);
        assert_eq!(outcome.timeouts, [None, None]);
    }

    #[test]
    fn a_console_shell_that_cannot_start_is_retried() {
        let fixture = fixture(Some("mfv.rescue"), None, true, true);
        let system = FakeSystem {
            spawn_failures: 1,
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[None, Some(Signal::SIGTERM)]);
        assert!(outcome.has(&format!(
            "console shell: start {}: ENOEXEC: Exec format error; trying again in 1.000 s",
            fixture.settings.shell.display()
        )));
        assert!(outcome.has("console shell started on /dev/console"));
        assert_eq!(outcome.calls_like("spawn").len(), 2);
        let retry = outcome.timeouts[0].unwrap();
        assert!(retry > Duration::from_millis(990) && retry <= Duration::from_secs(1));
    }

    #[test]
    fn without_a_shell_the_loop_still_waits_for_signals() {
        let fixture = fixture(Some("mfv.rescue"), None, false, true);
        let outcome = run(&fixture, FakeSystem::default(), &[Some(Signal::SIGUSR1)]);
        assert!(outcome.has(&format!(
            "console shell: {} not found, none started",
            fixture.settings.shell.display()
        )));
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));
    }

    #[test]
    fn a_failing_signal_source_takes_the_fatal_path() {
        let fixture = fixture(Some(""), None, false, false);
        let outcome = run(&fixture, FakeSystem::default(), &[]);
        assert!(outcome.has("fatal: signal script used up"));
        assert_eq!(outcome.end, RunEnd::Failed);
    }

    #[test]
    fn failed_signal_set_up_takes_the_fatal_path_after_the_boot() {
        let fixture = fixture(Some(""), None, false, true);
        let outcome = run_with(
            &fixture,
            FakeSystem::default(),
            Err(anyhow!("signalfd: ENOSYS")),
        );
        assert!(
            outcome
                .messages
                .iter()
                .any(|m| m.starts_with("boot sequence complete"))
        );
        assert!(outcome.has("fatal: signal set-up: signalfd: ENOSYS"));
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));
    }

    #[test]
    fn a_panic_in_the_main_loop_takes_the_fatal_path() {
        let fixture = fixture(Some("mfv.rescue"), None, true, false);
        let system = FakeSystem {
            spawn_panics: true,
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        assert!(outcome.has("fatal: panic: spawn exploded"));
        assert!(outcome.has("rescue shell: exit it to halt"));
        assert!(outcome.has("rescue shell: panic: spawn exploded"));
        assert_eq!(outcome.end, RunEnd::Failed);
    }

    #[test]
    fn shutdown_waits_for_processes_then_kills_and_keeps_going_on_errors() {
        let fixture = fixture(Some("mfv.halt=reboot"), Some(MOUNTINFO_STAGE2), false, true);
        let still_running = Reaped {
            exited: Vec::new(),
            children_left: true,
        };
        let system = FakeSystem {
            reaps: std::iter::repeat_n(still_running, 500).collect(),
            kill_fails: true,
            failing_unmounts: vec!["/sys", "/dev"],
            failing_remounts: vec!["/dev"],
            reboot_fails: true,
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        for message in [
            "shutdown: kill(-1, SIGTERM): EPERM: Operation not permitted",
            "shutdown: kill(-1, SIGHUP): EPERM: Operation not permitted",
            "shutdown: kill(-1, SIGCONT): EPERM: Operation not permitted",
            "shutdown: processes still running after 2.000 s, sending SIGKILL",
            "shutdown: kill(-1, SIGKILL): EPERM: Operation not permitted",
            "shutdown: remount /dev read-only: EBUSY: Device or resource busy",
            "shutdown: file systems: 1 unmounted, 2 remounted read-only, 1 left as they were",
            "shutdown: reboot now",
            "shutdown: reboot(reboot): EPERM: Operation not permitted",
        ] {
            assert!(
                outcome.has(message),
                "missing {message:?} in {:#?}",
                outcome.messages
            );
        }
        assert_eq!(outcome.end, RunEnd::ShutdownFailed(ShutdownAction::Reboot));
    }

    #[test]
    fn ctrl_alt_del_is_disabled_only_as_pid1_and_a_failure_is_logged() {
        let fixture_pid1 = fixture(Some("mfv.halt=halt"), None, false, true);
        let system = FakeSystem {
            cad_fails: true,
            ..FakeSystem::default()
        };
        let outcome = run(&fixture_pid1, system, &[]);
        assert_eq!(
            outcome.messages[0],
            "ctrl-alt-del: reboot(RB_DISABLE_CAD): EPERM: Operation not permitted"
        );
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));

        let fixture_stage2 = fixture(Some("mfv.halt=halt"), None, false, false);
        let outcome = run(&fixture_stage2, FakeSystem::default(), &[]);
        assert!(outcome.calls_like("disable-cad").is_empty());
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));
    }

    #[test]
    fn a_thread_for_the_random_seed_that_cannot_start_is_logged_and_the_boot_goes_on() {
        let fixture = fixture(Some("mfv.halt=halt"), None, false, true);
        let system = FakeSystem {
            seed_fails: true,
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        assert_eq!(
            outcome.messages[0],
            "random: start the thread that waits for the random number generator: Resource \
             temporarily unavailable (os error 11)"
        );
        assert_eq!(outcome.calls[..2], ["seed-random", "disable-cad"]);
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Halt));
    }

    /// A report as discovery makes it: `outcome` after `/dev/sda1` was absent and the volume
    /// labelled mfv-config was `/dev/vdb1` with `verdict`.
    fn report(outcome: Discovery, verdict: Verdict) -> DiscoveryReport {
        DiscoveryReport {
            outcome,
            requested: None,
            candidates: vec![
                CandidateReport {
                    locator: ConfigLocator::Device(PathBuf::from("/dev/sda1")),
                    device: Some(PathBuf::from("/dev/sda1")),
                    fs_type: None,
                    verdict: Verdict::Absent {
                        reason: Absence::NoDeviceNode,
                    },
                    unmount_error: None,
                },
                CandidateReport {
                    locator: ConfigLocator::Label("mfv-config".to_string()),
                    device: Some(PathBuf::from("/dev/vdb1")),
                    fs_type: Some("ext4".to_string()),
                    verdict,
                    unmount_error: None,
                },
            ],
            scan_issues: Vec::new(),
            passes: 1,
            elapsed: Duration::from_millis(12),
            settling: None,
        }
    }

    fn vdb1_source() -> ConfigSource {
        ConfigSource {
            device: PathBuf::from("/dev/vdb1"),
            fs_type: "ext4".to_string(),
            label: Some("mfv-config".to_string()),
            uuid: None,
            locator: ConfigLocator::Label("mfv-config".to_string()),
        }
    }

    /// The messages after the line of phase `after` up to the line of phase `through`.
    fn messages_between_phases<'o>(
        outcome: &'o Outcome,
        after: &str,
        through: &str,
    ) -> Vec<&'o str> {
        let position = |phase: &str| {
            let line = format!("phase {phase}: ");
            outcome
                .messages
                .iter()
                .position(|m| m.starts_with(&line))
                .unwrap()
        };
        outcome.messages[position(after) + 1..=position(through)]
            .iter()
            .map(String::as_str)
            .collect()
    }

    /// The messages from the end of `coldplug` to the end of `hostname`.
    fn config_and_hostname_messages(outcome: &Outcome) -> Vec<&str> {
        messages_between_phases(outcome, "coldplug", "hostname")
    }

    #[test]
    fn a_found_configuration_is_reported_and_names_the_host() {
        let fixture = fixture(
            Some("mfv.config_wait=15 mfv.halt=poweroff"),
            None,
            false,
            true,
        );
        let system = system_with_config("version = 1\n[host]\nhostname = \"vmhost1\"\n");
        let outcome = run(&fixture, system, &[]);
        assert_eq!(
            config_and_hostname_messages(&outcome),
            [
                "hotplug: listening for kernel uevents",
                "config: using mfv.toml from /dev/vdb1 (ext4, LABEL=mfv-config)",
                "  /dev/sda1: absent (no such device)",
                "  LABEL=mfv-config /dev/vdb1 (ext4): taken",
                "phase config: ok (0.5 ms)",
                "hostname: vmhost1 (from the configuration on /dev/vdb1)",
                "phase hostname: ok (0.2 ms)",
            ]
        );
        assert_eq!(
            outcome.calls_like("discover-config"),
            ["discover-config locator=- wait=15s sysfs=/sys dev=/dev run=/run/mfv"]
        );
        assert_eq!(outcome.calls_like("sethostname"), ["sethostname vmhost1"]);
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    /// The messages from the end of `network` to the end of `log`.
    fn log_phase_messages(outcome: &Outcome) -> Vec<&str> {
        messages_between_phases(outcome, "network", "log")
    }

    #[test]
    fn a_configured_log_server_gets_the_lines_once_the_network_is_up() {
        let fixture = fixture(Some("mfv.halt=poweroff"), None, false, true);
        let config = "version = 1\n[host]\nhostname = \"vmhost1\"\n\
                      [log]\nremote = \"tcp://192.0.2.20\"\n";
        let outcome = run(&fixture, system_with_config(config), &[]);
        assert_eq!(
            log_phase_messages(&outcome),
            [
                "log: forwarding to tcp://192.0.2.20",
                "phase log: ok (0.2 ms)"
            ]
        );
        assert_eq!(
            outcome.calls_like("forward-logs"),
            ["forward-logs tcp://192.0.2.20 vmhost1"]
        );

        let mut system = system_with_config(config);
        system.forward_logs_fails = true;
        let outcome = run(&fixture, system, &[]);
        assert_eq!(
            log_phase_messages(&outcome),
            ["phase log: FAILED: cannot start the thread that sends to tcp://192.0.2.20"]
        );
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    #[test]
    fn without_a_log_server_nothing_is_forwarded() {
        let fixture = fixture(Some("mfv.halt=poweroff"), None, false, true);
        let system = system_with_config("version = 1\n[host]\nhostname = \"vmhost1\"\n");
        let outcome = run(&fixture, system, &[]);
        assert!(outcome.calls_like("forward-logs").is_empty());
        let outcome = run(&fixture, FakeSystem::default(), &[]);
        assert!(outcome.calls_like("forward-logs").is_empty());
    }

    #[test]
    fn an_invalid_configuration_shows_every_error_and_the_boot_goes_on() {
        let fixture = fixture(Some("mfv.halt=poweroff"), None, false, true);
        let system =
            system_with_invalid_config("version = 1\n[host]\nhostname = \"-bad-\"\n[netwrk]\n");
        let outcome = run(&fixture, system, &[]);
        let messages = config_and_hostname_messages(&outcome);
        assert_eq!(messages[0], "hotplug: listening for kernel uevents");
        let messages = &messages[1..];
        assert_eq!(
            messages[..3],
            [
                "config: mfv.toml on /dev/vdb1 (ext4, LABEL=mfv-config) is invalid (2 errors)",
                "  /dev/sda1: absent (no such device)",
                "  LABEL=mfv-config /dev/vdb1 (ext4): invalid (2 errors)",
            ]
        );
        assert!(messages[3].starts_with("    mfv.toml:3:"), "{messages:?}");
        assert!(messages[3].contains("host.hostname"), "{messages:?}");
        assert!(messages[4].starts_with("    mfv.toml:4:"), "{messages:?}");
        assert!(messages[4].contains("netwrk"), "{messages:?}");
        assert_eq!(
            messages[5..],
            [
                SETUP_NEEDED,
                "phase config: ok (0.8 ms)",
                "phase hostname: ok (0.1 ms)"
            ]
        );
        assert_eq!(outcome.calls_like("sethostname"), ["sethostname minifed"]);
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    #[test]
    fn a_hostile_key_on_the_volume_reaches_the_console_escaped() {
        let fixture = fixture(Some("mfv.halt=poweroff"), None, false, true);
        let system = system_with_invalid_config(
            "version = 1\n\"x\\u001b]0;owned\\u0007\\u000aforged line\" = 1\n",
        );
        let outcome = run(&fixture, system, &[]);
        assert!(
            !outcome.output.contains(['\u{1b}', '\u{7}']),
            "{}",
            outcome.output
        );
        assert!(
            !outcome.output.contains("\nforged line"),
            "{}",
            outcome.output
        );
        assert!(
            outcome
                .output
                .contains("x\\u001b]0;owned\\u0007\\u000aforged line"),
            "{}",
            outcome.output
        );
    }

    #[test]
    fn config_none_is_passed_to_discovery_and_reported_as_skipped() {
        let fixture = fixture(Some("mfv.config=none mfv.halt=poweroff"), None, false, true);
        let outcome = run(&fixture, FakeSystem::default(), &[]);
        assert_eq!(
            outcome.calls_like("discover-config"),
            ["discover-config locator=none wait=- sysfs=/sys dev=/dev run=/run/mfv"]
        );
        let system = FakeSystem {
            discovery: Some(DiscoveryReport {
                outcome: Discovery::NotFound,
                requested: Some(ConfigLocator::Disabled),
                candidates: Vec::new(),
                scan_issues: Vec::new(),
                passes: 0,
                elapsed: Duration::ZERO,
                settling: None,
            }),
            ..FakeSystem::default()
        };
        let outcome = run(&fixture, system, &[]);
        assert_eq!(
            config_and_hostname_messages(&outcome),
            [
                "hotplug: listening for kernel uevents",
                "config: discovery skipped (mfv.config=none)",
                SETUP_NEEDED,
                "phase config: ok (0.4 ms)",
                "phase hostname: ok (0.1 ms)",
            ]
        );
        assert_eq!(outcome.calls_like("sethostname"), ["sethostname minifed"]);
    }

    #[test]
    fn panic_messages() {
        let text: Box<dyn Any + Send> = Box::new("static text");
        assert_eq!(panic_message(&*text), "static text");
        let owned: Box<dyn Any + Send> = Box::new(String::from("owned text"));
        assert_eq!(panic_message(&*owned), "owned text");
        let other: Box<dyn Any + Send> = Box::new(42);
        assert_eq!(panic_message(&*other), "(no message)");
    }

    /// The messages from the end of `hostname` to the end of `network`.
    fn network_messages(outcome: &Outcome) -> Vec<&str> {
        messages_between_phases(outcome, "hostname", "network")
    }

    /// A system whose discovery finds a configuration naming the host vmhost1, with DHCP on
    /// eth1.
    fn system_with_network_config() -> FakeSystem {
        system_with_config(
            "version = 1\n[host]\nhostname = \"vmhost1.example.org\"\n\
             [[network.interfaces]]\nname = \"eth1\"\nmode = \"dhcp\"\n",
        )
    }

    /// A system whose discovery finds the configuration `text` on /dev/vdb1.
    /// A system whose discovery found `text`, which must be invalid, on /dev/vdb1.
    fn system_with_invalid_config(text: &str) -> FakeSystem {
        let errors = mfv_config::schema::parse_config(text).unwrap_err();
        FakeSystem {
            discovery: Some(report(
                Discovery::Invalid {
                    source: vdb1_source(),
                    errors: errors.clone(),
                },
                Verdict::Invalid { errors },
            )),
            ..FakeSystem::default()
        }
    }

    fn system_with_config(text: &str) -> FakeSystem {
        let config = mfv_config::schema::parse_config(text).unwrap();
        FakeSystem {
            discovery: Some(report(
                Discovery::Found {
                    config: Box::new(config),
                    source: vdb1_source(),
                },
                Verdict::Taken,
            )),
            ..FakeSystem::default()
        }
    }

    #[test]
    fn the_boot_option_sets_up_the_network_before_the_configuration_would() {
        let fixture = fixture(
            Some("mfv.net=eth0:dhcp mfv.halt=poweroff"),
            None,
            false,
            true,
        );
        let outcome = run(&fixture, system_with_network_config(), &[]);
        assert_eq!(
            network_messages(&outcome),
            [
                "net: lo up",
                "net: from mfv.net=eth0:dhcp",
                "net: eth0: DHCP client started",
                "phase network: ok (0.4 ms)",
            ]
        );
        assert_eq!(
            outcome.network_calls,
            ["loopback up", "dhcp eth0 hostname vmhost1"]
        );
        assert_eq!(outcome.end, RunEnd::ShutDown(ShutdownAction::Poweroff));
    }

    #[test]
    fn without_a_boot_option_the_configurations_network_is_applied() {
        let fixture = fixture(Some("mfv.halt=poweroff"), None, false, true);
        let outcome = run(&fixture, system_with_network_config(), &[]);
        assert_eq!(
            network_messages(&outcome),
            [
                "net: lo up",
                "net: from the configuration on /dev/vdb1",
                "net: eth1: DHCP client started",
                "phase network: ok (0.4 ms)",
            ]
        );
        assert_eq!(
            outcome.network_calls,
            ["loopback up", "apply eth1", "dhcp eth1 hostname vmhost1"]
        );
    }

    #[test]
    fn the_clock_and_the_unapplied_settings_of_a_configuration_are_reported() {
        let system = system_with_config(
            "version = 1\n[host]\nhostname = \"vmhost1\"\ntime_zone = \"Europe/Berlin\"\n\
             ntp_servers = [\"192.0.2.123\", \"ntp.example.org\"]\n\
             [auth]\nmin_password_length = 12\n",
        );
        let fixture = fixture(Some("mfv.halt=poweroff"), None, true, true);
        let outcome = run(&fixture, system, &[]);
        let start = outcome
            .messages
            .iter()
            .position(|m| m.starts_with("phase log: "))
            .unwrap();
        assert_eq!(
            outcome.messages[start + 1..start + 6],
            [
                "clock: time_zone Europe/Berlin is not applied: the image carries no time zone \
                 data, so times are UTC",
                "clock: keeping time with SNTP from 192.0.2.123, ntp.example.org",
                "phase clock: ok (0.3 ms)",
                "settings: auth is used by mfv user, mfv token and mfv auth; no login service \
                 runs yet",
                "phase settings: ok (0.2 ms)",
            ]
        );
        assert_eq!(
            outcome.time_sync_starts,
            [["192.0.2.123", "ntp.example.org"]]
        );
    }
}
