//! `mfv host`: the host's status, services and logs, service restarts, reboot and power off,
//! asked of the host daemon over its socket.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use mfv_api::{Client, ConfigProvenance, HostStatus, LogSource, MAX_LOG_LINES, ServiceStatus};

use mfv_client::Client as RemoteClient;

use crate::output::Output;

/// `mfv host ...`.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// The host daemon's socket.
    #[arg(long, default_value = mfv_api::DEFAULT_SOCKET_PATH, global = true)]
    socket: PathBuf,
    #[command(subcommand)]
    command: HostCommand,
}

#[derive(Debug, Subcommand)]
enum HostCommand {
    /// Uptime, KVM or TCG, where the configuration came from, the boot phases and the
    /// services.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The supervised services: state, process, restarts, last exit.
    Services {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The recent output of a service, or the boot's lines without a name.
    Logs {
        /// The service, e.g. libvirtd.
        service: Option<String>,
        /// How many lines.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: u32,
    },
    /// Restart a service (libvirtd, virtlogd, host-daemon, mfv-web).
    Restart {
        /// The service.
        service: String,
    },
    /// Make a partition or disk a config volume, erasing it (ext4 labelled mfv-config, or FAT
    /// labelled MFV-CONFIG). The device must be named twice.
    Format {
        /// The device, e.g. /dev/sdb1.
        device: String,
        /// The file system.
        #[arg(long, value_enum, default_value = "ext4")]
        fs: FsArg,
        /// The device path again, exactly: nothing is erased without it.
        #[arg(long)]
        confirm: String,
    },
    /// Reboot the host: VMs are shut down, services stopped, file systems unmounted.
    Reboot {
        /// The host's name, again (as `mfv host status` shows it): required with --remote,
        /// so a command aimed at another host is refused.
        #[arg(long, value_name = "HOSTNAME")]
        confirm: Option<String>,
    },
    /// Power the host off, the same way.
    Poweroff {
        /// The host's name, again (as `mfv host status` shows it): required with --remote.
        #[arg(long, value_name = "HOSTNAME")]
        confirm: Option<String>,
    },
}

/// The file system of `mfv host format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FsArg {
    /// ext4, labelled mfv-config.
    Ext4,
    /// FAT, labelled MFV-CONFIG.
    Vfat,
}

/// Runs `mfv host ...`.
pub fn run(args: HostArgs) -> anyhow::Result<Output> {
    let mut client = Client::connect(&args.socket).with_context(|| {
        format!(
            "the host daemon does not answer on {} (is this a Minifed-Virt host, and are you root?)",
            args.socket.display()
        )
    })?;
    match args.command {
        HostCommand::Status { json } => {
            let status = client.host_status()?;
            Output::data(&status, json, render_status)
        }
        HostCommand::Services { json } => Output::data(&client.services()?, json, |services| {
            render_services(services, "")
        }),
        HostCommand::Logs { service, lines } => {
            if !(1..=MAX_LOG_LINES).contains(&lines) {
                anyhow::bail!("--lines {lines}: give 1 to {MAX_LOG_LINES}");
            }
            let source = match service {
                Some(name) => LogSource::Service { name },
                None => LogSource::Boot,
            };
            Ok(Output::ok(render_logs(&client.logs(source, lines)?)))
        }
        HostCommand::Restart { service } => {
            let status = match client.service_restart(&service) {
                Ok(status) => status,
                // The daemon that answers is the one restarted: it goes away mid-answer. Its
                // successor tells how the restart went.
                Err(_) if service == DAEMON_SERVICE => {
                    drop(client);
                    restarted_daemon(&args.socket)?
                }
                Err(error) => return Err(error.into()),
            };
            Ok(Output::ok(format!(
                "{} restarted: {}\n",
                status.name,
                service_line(&status)
            )))
        }
        HostCommand::Format {
            device,
            fs,
            confirm,
        } => {
            let fs = match fs {
                FsArg::Ext4 => mfv_api::VolumeFs::Ext4,
                FsArg::Vfat => mfv_api::VolumeFs::Vfat,
            };
            let volume = client.format_config_volume(&device, fs, &confirm)?;
            Ok(Output::ok(format!(
                "formatted {}: {} labelled {}{}\n",
                volume.device,
                volume.fs_type,
                volume.label,
                volume
                    .uuid
                    .map(|uuid| format!(", UUID {uuid} (pin it with mfv.config=UUID={uuid})"))
                    .unwrap_or_default()
            )))
        }
        HostCommand::Reboot { .. } => {
            client.reboot()?;
            Ok(Output::ok("the host is rebooting\n"))
        }
        HostCommand::Poweroff { .. } => {
            client.power_off()?;
            Ok(Output::ok("the host is powering off\n"))
        }
    }
}

/// `[seconds.micros] text`, a line each.
fn render_logs(lines: &[mfv_api::LogLine]) -> String {
    let mut text = String::new();
    for line in lines {
        let _ = writeln!(
            text,
            "[{:>12.6}] {}",
            line.timestamp_us as f64 / 1e6,
            line.text
        );
    }
    text
}

/// Runs `mfv host ...` against a host's API through `client`. Formatting a volume is the
/// console's alone; a reboot or power-off must name the host (`--confirm`).
pub fn run_remote(args: HostArgs, client: &mut RemoteClient) -> anyhow::Result<Output> {
    match args.command {
        HostCommand::Status { json } => Output::data(&client.host_status()?, json, |answer| {
            format!(
                "hostname        {}\n{}",
                answer.hostname,
                render_status(&answer.status)
            )
        }),
        HostCommand::Services { json } => Output::data(&client.services()?, json, |services| {
            render_services(services, "")
        }),
        HostCommand::Logs { service, lines } => {
            if !(1..=MAX_LOG_LINES).contains(&lines) {
                anyhow::bail!("--lines {lines}: give 1 to {MAX_LOG_LINES}");
            }
            Ok(Output::ok(render_logs(
                &client.logs(service.as_deref(), lines)?,
            )))
        }
        HostCommand::Restart { service } => {
            let status = client.restart_service(&service)?;
            Ok(Output::ok(format!(
                "{} restarted: {}\n",
                status.name,
                service_line(&status)
            )))
        }
        HostCommand::Format { .. } => anyhow::bail!(
            "mfv host format cannot run with --remote: it erases a device, which is done at \
             the host's console"
        ),
        HostCommand::Reboot { confirm } => {
            let answer = client.reboot_host(&required_confirm("reboot", confirm)?)?;
            Ok(Output::ok(format!("{} is rebooting\n", answer.hostname)))
        }
        HostCommand::Poweroff { confirm } => {
            let answer = client.power_off_host(&required_confirm("poweroff", confirm)?)?;
            Ok(Output::ok(format!("{} is powering off\n", answer.hostname)))
        }
    }
}

/// `--confirm`, which a remote reboot or power-off needs.
fn required_confirm(command: &str, confirm: Option<String>) -> anyhow::Result<String> {
    confirm.with_context(|| {
        format!(
            "mfv host {command} with --remote needs --confirm HOSTNAME, the host's name as \
             `mfv host status` shows it"
        )
    })
}

/// The host daemon's name among the services.
const DAEMON_SERVICE: &str = "host-daemon";
/// How long a restarted daemon gets to answer again.
const DAEMON_RESTART_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The new host daemon's own status, once it answers on `socket`.
fn restarted_daemon(socket: &std::path::Path) -> anyhow::Result<ServiceStatus> {
    let deadline = std::time::Instant::now() + DAEMON_RESTART_WAIT;
    loop {
        match Client::connect(socket).and_then(|mut client| client.service(DAEMON_SERVICE)) {
            Ok(status) if status.pid.is_some() && status.restarts > 0 => return Ok(status),
            Ok(_) | Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Ok(status) => return Ok(status),
            Err(error) => {
                return Err(error).context(format!(
                    "the host daemon did not answer again within {} s of its restart",
                    DAEMON_RESTART_WAIT.as_secs()
                ));
            }
        }
    }
}

/// The status as text: a summary, then one line per boot phase and per service.
fn render_status(status: &HostStatus) -> String {
    let mut text = String::new();
    let uptime = status.uptime_ms / 1000;
    let _ = writeln!(
        text,
        "uptime          {}d {:02}:{:02}:{:02}",
        uptime / 86_400,
        uptime / 3600 % 24,
        uptime / 60 % 60,
        uptime % 60
    );
    let _ = writeln!(
        text,
        "virtualization  {}",
        match status.virtualization {
            mfv_api::Virtualization::Kvm => "KVM",
            mfv_api::Virtualization::Pending =>
                "not known yet (the KVM module loads once the web server answers)",
            _ => "TCG (software emulation)",
        }
    );
    let config = match &status.boot.config {
        ConfigProvenance::Found { device, .. } => format!("from {device}"),
        ConfigProvenance::Invalid { device, errors } => {
            format!("invalid on {device} ({} errors): not used", errors.len())
        }
        _ => "none found: setup is needed".to_owned(),
    };
    let _ = writeln!(text, "configuration   {config}");
    let _ = writeln!(text, "\nboot phases");
    for phase in &status.boot.phases {
        let outcome = phase.error.as_deref().unwrap_or("ok");
        let _ = writeln!(
            text,
            "  {:<16} {:>9.1} ms  {outcome}",
            phase.name,
            phase.duration_us as f64 / 1000.0
        );
    }
    let _ = writeln!(text, "\nservices");
    text.push_str(&render_services(&status.services, "  "));
    text
}

/// A line per service, `indent`ed: its name, then its [`service_line`].
fn render_services(services: &[ServiceStatus], indent: &str) -> String {
    let mut text = String::new();
    for service in services {
        let _ = writeln!(
            text,
            "{indent}{:<16} {}",
            service.name,
            service_line(service)
        );
    }
    text
}

/// `running (pid 310), 2 restarts, last exit: killed by signal 9`.
fn service_line(service: &ServiceStatus) -> String {
    let mut line = service.state.to_string();
    if let Some(pid) = service.pid {
        let _ = write!(line, " (pid {pid})");
    }
    if service.restarts > 0 {
        let _ = write!(line, ", {} restarts", service.restarts);
    }
    match service.last_exit {
        Some(mfv_api::ExitStatus::Exited { code }) => {
            let _ = write!(line, ", last exit: status {code}");
        }
        Some(mfv_api::ExitStatus::Killed { signal }) => {
            let _ = write!(line, ", last exit: killed by signal {signal}");
        }
        _ => {}
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfv_api::{BootPhase, BootReport, ServiceState, Virtualization};

    #[test]
    fn the_status_reads_as_a_summary_then_phases_then_services() {
        let mut boot = BootReport::new(ConfigProvenance::NotFound);
        boot.phases.push(BootPhase::new("coldplug", 41_200));
        let mut status = HostStatus::new(90_061_000, boot, Virtualization::Tcg);
        let mut libvirtd = ServiceStatus::new("libvirtd", ServiceState::CrashLooping);
        libvirtd.restarts = 5;
        libvirtd.last_exit = Some(mfv_api::ExitStatus::Killed { signal: 11 });
        status.services = vec![libvirtd];
        assert_eq!(
            render_status(&status),
            "uptime          1d 01:01:01\n\
             virtualization  TCG (software emulation)\n\
             configuration   none found: setup is needed\n\
             \n\
             boot phases\n  \
               coldplug              41.2 ms  ok\n\
             \n\
             services\n  \
               libvirtd         crash looping, 5 restarts, last exit: killed by signal 11\n"
        );
    }

    #[test]
    fn without_a_daemon_the_error_says_what_to_check() {
        let dir = tempfile::tempdir().unwrap();
        let args = HostArgs {
            socket: dir.path().join("host.sock"),
            command: HostCommand::Reboot { confirm: None },
        };
        let error = format!("{:#}", run(args).unwrap_err());
        assert!(
            error.contains("the host daemon does not answer on ")
                && error.contains("are you root?"),
            "{error}"
        );
    }
}
