//! `mfv`: the Minifed-Virt command on the host shell.
//!
//! A thin binary: it parses arguments with clap, calls mfv-host and the library crates, and
//! writes each command family's [`Output`] in one place. Exit codes: 0 success, 1 the
//! operation failed, 2 wrong usage (clap's own).

mod auth_cmd;
mod config_cmd;
mod host_cmd;
mod net_cmd;
mod output;
mod remote_cmd;
mod vm_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mfv_config::cmdline::{BootOptions, KernelCmdline};
use mfv_host::hardware::{Drivers, ProbeSettings, modules_dir};
use mfv_probe::{ColdplugOptions, SystemRoots};
use output::Output;

#[derive(Debug, Parser)]
#[command(name = "mfv", version, about = "Manage a Minifed-Virt host")]
struct Cli {
    #[command(flatten)]
    remote: remote_cmd::RemoteOptions,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the boot options (`mfv.*`) read from the kernel command line, and what was ignored.
    Cmdline {
        /// Read this file instead of the running kernel's command line.
        #[arg(long, default_value = "/proc/cmdline")]
        file: PathBuf,
    },
    /// Show the hardware inventory (NICs, disks, USB, CPU, memory) as a table, or load the
    /// drivers of every device first (coldplug) and show what was loaded.
    Probe {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Load the drivers of every device present (root only), then print the coldplug
        /// report instead of the inventory.
        #[arg(long)]
        load: bool,
        /// The sysfs root.
        #[arg(long, default_value = mfv_probe::DEFAULT_SYSFS_ROOT)]
        sysfs: PathBuf,
        /// The procfs root (cpuinfo, meminfo, cmdline, the kernel release).
        #[arg(long, default_value = mfv_probe::DEFAULT_PROC_ROOT)]
        proc: PathBuf,
        /// The device node directory.
        #[arg(long, default_value = mfv_probe::DEFAULT_DEV_ROOT)]
        dev: PathBuf,
        /// The modules of the running kernel, for --load [default: /lib/modules/RELEASE, RELEASE from uname].
        #[arg(long)]
        modules: Option<PathBuf>,
    },
    /// Discover, show, validate, read and change the host configuration.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// Add, delete, list and change users (passwords from the terminal or stdin).
    User(auth_cmd::UserArgs),
    /// Create, list and revoke API tokens.
    Token(auth_cmd::TokenArgs),
    /// Check the user backend (`mfv auth test USER`).
    Auth(auth_cmd::AuthArgs),
    /// Show the audit log of logins and user changes, newest first.
    Audit(auth_cmd::AuditArgs),
    /// Show and change the network: interfaces, addresses, routes, DHCP, bridge, VLAN.
    Net(net_cmd::NetArgs),
    /// Create, start, stop, delete and list VMs; consoles and snapshots.
    Vm(vm_cmd::VmArgs),
    /// The host's status, services and logs; restart a service; reboot or power off.
    Host(host_cmd::HostArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = run(cli).unwrap_or_else(|error| Output::failed(format!("mfv: {error:#}\n")));
    output.write(&mut std::io::stdout(), &mut std::io::stderr())
}

fn run(cli: Cli) -> anyhow::Result<Output> {
    if let Some(url) = cli.remote.remote.clone() {
        return remote_cmd::run(url, cli.remote, cli.command);
    }
    match cli.command {
        Command::User(args) => auth_cmd::run_user(args),
        Command::Token(args) => auth_cmd::run_token(args),
        Command::Auth(args) => auth_cmd::run_auth(args),
        Command::Audit(args) => auth_cmd::run_audit(args),
        Command::Net(args) => net_cmd::run(args),
        Command::Vm(args) => vm_cmd::run(args),
        Command::Host(args) => host_cmd::run(args),
        Command::Config { command } => config_cmd::run(command),
        Command::Cmdline { file } => {
            let cmdline = KernelCmdline::read_from(&file)
                .with_context(|| format!("mfv cmdline --file {}", file.display()))?;
            Ok(Output::ok(render_boot_options(&cmdline.boot_options())))
        }
        Command::Probe {
            json,
            load,
            sysfs,
            proc,
            dev,
            modules,
        } => {
            let roots = SystemRoots { sysfs, proc, dev };
            if load {
                coldplug(&roots, modules.as_deref(), json)
            } else {
                inventory(&roots, json)
            }
        }
    }
}

/// The inventory as the table, or as JSON.
fn inventory(roots: &SystemRoots, json: bool) -> anyhow::Result<Output> {
    Output::data(&mfv_probe::inventory_at(roots), json, |inventory| {
        inventory.render_table()
    })
}

/// Runs coldplug like mfv-init does (modules of the running kernel, options and blacklist
/// from the kernel command line as modprobe reads them) and returns its report.
fn coldplug(roots: &SystemRoots, modules: Option<&Path>, json: bool) -> anyhow::Result<Output> {
    let modules_dir = match modules {
        Some(dir) => dir.to_path_buf(),
        None => modules_dir(&roots.proc, Path::new("/lib/modules"))?,
    };
    let cmdline = KernelCmdline::read_from(&roots.proc.join("cmdline"))?;
    let settings = ProbeSettings::from_cmdline(&cmdline, roots.clone(), &modules_dir);
    let drivers = Drivers::open(&settings)?;
    let report = mfv_probe::coldplug(
        &roots.sysfs,
        &mut drivers.loader(),
        &ColdplugOptions::default(),
    )?;
    Output::data(&report, json, ToString::to_string)
}

/// One `key  value` line per boot option (`-` when unset), then the warnings.
fn render_boot_options(options: &BootOptions) -> String {
    fn or_unset(value: Option<String>) -> String {
        value.unwrap_or_else(|| "-".to_owned())
    }
    let seconds = |duration: Option<std::time::Duration>| {
        or_unset(duration.map(|d| format!("{} s", d.as_secs_f64())))
    };
    let rows = [
        (
            "mfv.config",
            or_unset(options.config.as_ref().map(ToString::to_string)),
        ),
        ("mfv.config_wait", seconds(options.config_wait)),
        (
            "mfv.net",
            or_unset(options.net.as_ref().map(ToString::to_string)),
        ),
        ("mfv.setup_timeout", seconds(options.setup_timeout)),
        ("mfv.halt", or_unset(options.halt.map(|h| h.to_string()))),
        (
            "mfv.debug",
            if options.debug { "on" } else { "off" }.to_owned(),
        ),
    ];
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(&format!("{key:<18} {value}\n"));
    }
    for warning in &options.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_option_and_the_warnings() {
        let options = KernelCmdline::parse(
            "quiet mfv.config=LABEL=mfv-config mfv.net=eth0:192.0.2.10/24,gw=192.0.2.1 \
             mfv.halt=poweroff mfv.confg=x mfv.config_wait=2.5",
        )
        .boot_options();
        assert_eq!(
            render_boot_options(&options),
            "mfv.config         LABEL=mfv-config\n\
             mfv.config_wait    2.5 s\n\
             mfv.net            eth0:192.0.2.10/24,gw=192.0.2.1\n\
             mfv.setup_timeout  -\n\
             mfv.halt           poweroff\n\
             mfv.debug          off\n\
             warning: unknown key mfv.confg ignored (did you mean mfv.config?)\n"
        );
    }

    fn probe(args: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from([&["mfv", "probe"], args].concat())?;
        Ok(run(cli)?.stdout)
    }

    /// What `blkid -p` says about `/dev/<name>`: (TYPE, LABEL).
    fn blkid(name: &str) -> (Option<String>, Option<String>) {
        let output = std::process::Command::new("blkid")
            .args(["-p", "-o", "export"])
            .arg(format!("/dev/{name}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key))
                .map(str::to_owned)
        };
        (field("TYPE="), field("LABEL="))
    }

    /// The inventory of this machine agrees with /sys/class/net, /sys/block and blkid.
    #[test]
    fn the_inventory_of_this_machine_matches_sysfs_and_blkid() {
        let json: serde_json::Value = serde_json::from_str(&probe(&["--json"]).unwrap()).unwrap();
        let mut nics: Vec<String> = json["nics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|nic| nic["name"].as_str().unwrap().to_owned())
            .collect();
        nics.sort();
        let mut class_net: Vec<String> = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        class_net.sort();
        assert_eq!(nics, class_net);

        let disks = json["block_devices"].as_array().unwrap();
        for entry in std::fs::read_dir("/sys/block").unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            let size: u64 = std::fs::read_to_string(format!("/sys/block/{name}/size"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let listed = disks.iter().find(|disk| disk["name"] == name.as_str());
            if size == 0 {
                continue;
            }
            let disk = listed.unwrap_or_else(|| panic!("{name} missing from the inventory"));
            assert_eq!(disk["size_bytes"].as_u64(), Some(size * 512), "{name}");
            let (fs_type, label) = blkid(&name);
            assert_eq!(disk["fs_type"].as_str(), fs_type.as_deref(), "{name}");
            assert_eq!(disk["label"].as_str(), label.as_deref(), "{name}");
        }
        let table = probe(&[]).unwrap();
        assert!(table.starts_with("NICs\n"), "{table}");
        for nic in &nics {
            assert!(table.contains(nic.as_str()), "{nic} missing from {table}");
        }
    }

    #[test]
    fn an_empty_tree_gives_an_inventory_with_issues() {
        let dir = tempfile::tempdir().unwrap();
        let root = |name: &str| dir.path().join(name).display().to_string();
        let args = [
            "--json",
            "--sysfs",
            &root("sys"),
            "--proc",
            &root("proc"),
            "--dev",
            &root("dev"),
        ];
        let json: serde_json::Value = serde_json::from_str(&probe(&args).unwrap()).unwrap();
        assert_eq!(json["nics"], serde_json::json!([]));
        assert!(
            json["issues"]
                .to_string()
                .contains(&dir.path().join("sys").display().to_string())
        );
    }

    #[test]
    fn load_without_a_module_index_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("modules");
        let error = probe(&["--load", "--modules", &modules.display().to_string()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot read the module index in {}", modules.display())
        );
        let proc = dir.path().join("proc");
        let error = probe(&["--load", "--proc", &proc.display().to_string()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot read the kernel release from {}",
                proc.join("sys/kernel/osrelease").display()
            )
        );
    }

    #[test]
    fn load_on_a_machine_without_devices_settles_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("modules");
        std::fs::create_dir_all(&modules).unwrap();
        for file in [
            "modules.alias",
            "modules.dep",
            "modules.builtin",
            "modules.softdep",
        ] {
            std::fs::write(modules.join(file), "").unwrap();
        }
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(&proc).unwrap();
        std::fs::write(proc.join("cmdline"), "quiet mfv.blacklist=floppy\n").unwrap();
        let sysfs = dir.path().join("sys");
        std::fs::create_dir_all(sysfs.join("bus")).unwrap();
        let [modules, proc, sysfs] = [modules, proc, sysfs].map(|p| p.display().to_string());
        let args = [
            "--load",
            "--modules",
            &modules,
            "--proc",
            &proc,
            "--sysfs",
            &sysfs,
        ];
        let report = probe(&args).unwrap();
        assert!(
            report.starts_with("coldplug: settled after 1 pass in "),
            "{report}"
        );
        assert!(
            report.contains(": 0 devices, 0 modules loaded, 0 failed"),
            "{report}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&probe(&[&args[..], &["--json"]].concat()).unwrap()).unwrap();
        assert_eq!(json["end"], "settled");
        assert_eq!(json["passes"], 1);
    }

    #[test]
    fn an_unreadable_command_line_names_the_file() {
        let error = run(Cli {
            remote: remote_cmd::RemoteOptions {
                remote: None,
                token: None,
                fingerprint: None,
                known_hosts: None,
            },
            command: Command::Cmdline {
                file: PathBuf::from("/nonexistent/cmdline"),
            },
        })
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("/nonexistent/cmdline"), "{message}");
    }
}
