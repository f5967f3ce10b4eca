//! `mfv vm ...`: list, show, create, start, stop, delete VMs, their consoles and snapshots.
//!
//! Every subcommand talks to libvirt at `--uri` (else `LIBVIRT_DEFAULT_URI`, as virsh does,
//! else `qemu:///system`) through
//! [`mfv_vm::Hypervisor`]; `--json` prints data as JSON instead of text. `create` checks
//! the spec against the VMs already defined and prints every problem at once. The domain
//! type follows `--accel`: `auto` (the default) uses KVM when `/dev/kvm` opens for reading
//! and writing, `kvm` and `tcg` force one or the other.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use mfv_host::vm::{self, VmWorkflowError};
use mfv_vm::{HostCapabilities, Hypervisor, ShutdownOutcome, VmSpec, VmState, VolumePolicy};
use serde_json::json;

use crate::output::Output;

/// `mfv vm`.
#[derive(Debug, Args)]
pub struct VmArgs {
    /// The libvirt connection URI (as virsh, `LIBVIRT_DEFAULT_URI` when set).
    #[arg(
        long,
        global = true,
        env = "LIBVIRT_DEFAULT_URI",
        default_value = "qemu:///system"
    )]
    uri: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: VmCommand,
}

/// The `mfv vm` subcommands.
#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// List every VM with its state.
    List,
    /// Show a VM's state, size and disk and NIC counters.
    Show {
        /// The VM.
        name: String,
    },
    /// Define a VM from a JSON spec file or from flags (disks first, then images).
    Create(CreateArgs),
    /// Start a VM.
    Start {
        /// The VM.
        name: String,
    },
    /// Ask the guest to shut down (ACPI), then force it off after the timeout.
    Shutdown {
        /// The VM.
        name: String,
        /// Seconds to wait for the guest before forcing it off.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Force a VM off at once, like pulling the power cord.
    Kill {
        /// The VM.
        name: String,
    },
    /// Ask the guest to reboot.
    Reboot {
        /// The VM.
        name: String,
    },
    /// Undefine a stopped VM.
    Delete {
        /// The VM.
        name: String,
        /// Also delete its disk volumes in storage pools (CD-ROM images stay).
        #[arg(long)]
        with_disks: bool,
    },
    /// Print the VM's serial console output until the VM stops, another client takes the
    /// console over (an error) or the command is interrupted; with --vnc print where its
    /// VNC display listens instead.
    Console {
        /// The VM.
        name: String,
        /// Print the VNC endpoint instead of streaming the serial console.
        #[arg(long)]
        vnc: bool,
    },
    /// Create, list, revert to and delete snapshots.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
}

/// `mfv vm create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A JSON VM spec (the config store's format); the other spec flags are then refused.
    #[arg(long, conflicts_with_all = ["name", "vcpus", "memory_mib", "disk", "image", "cdrom", "bridge", "network", "uefi", "autostart"])]
    spec: Option<PathBuf>,
    /// The VM's name.
    #[arg(long, required_unless_present = "spec")]
    name: Option<String>,
    /// Number of virtual CPUs.
    #[arg(long, required_unless_present = "spec")]
    vcpus: Option<u32>,
    /// Memory in MiB.
    #[arg(long, required_unless_present = "spec")]
    memory_mib: Option<u64>,
    /// A new qcow2 volume `POOL:SIZE_GIB` (repeatable; targets vda, vdb, ...).
    #[arg(long, value_name = "POOL:SIZE_GIB")]
    disk: Vec<String>,
    /// An existing qcow2 image file, absolute path (repeatable; after the --disk disks).
    #[arg(long, value_name = "PATH")]
    image: Vec<PathBuf>,
    /// An ISO image in the CD-ROM drive.
    #[arg(long, value_name = "ISO")]
    cdrom: Option<PathBuf>,
    /// A NIC on this host bridge (repeatable).
    #[arg(long, value_name = "BR")]
    bridge: Vec<String>,
    /// A NIC on this libvirt network (repeatable; after the bridge NICs).
    #[arg(long, value_name = "NET")]
    network: Vec<String>,
    /// Boot with UEFI (OVMF) instead of BIOS.
    #[arg(long)]
    uefi: bool,
    /// Start the VM when the host boots.
    #[arg(long)]
    autostart: bool,
    /// How the VM runs: `auto` probes /dev/kvm.
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    accel: Accel,
}

/// How VMs run on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Accel {
    /// KVM when /dev/kvm opens for reading and writing, else TCG.
    Auto,
    /// KVM, even when the probe says it is not usable.
    Kvm,
    /// QEMU's TCG emulation, even when KVM is usable.
    Tcg,
}

/// `mfv vm snapshot`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Snapshot a VM's disks (and memory when it runs).
    Create {
        /// The VM.
        name: String,
        /// The snapshot.
        snapshot: String,
        /// Free text kept with the snapshot.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List a VM's snapshots, oldest first.
    List {
        /// The VM.
        name: String,
    },
    /// Return a VM to a snapshot.
    Revert {
        /// The VM.
        name: String,
        /// The snapshot.
        snapshot: String,
    },
    /// Delete a snapshot; the VM is not touched.
    Delete {
        /// The VM.
        name: String,
        /// The snapshot.
        snapshot: String,
    },
}

/// Runs `mfv vm ...`: connects to `--uri` and returns what the subcommand prints (the serial
/// console streams as it runs).
pub fn run(args: VmArgs) -> Result<Output> {
    let hypervisor = Hypervisor::connect(&args.uri)?;
    if let VmCommand::Console { name, vnc: false } = &args.command {
        stream_serial_console(&hypervisor, name)?;
        return Ok(Output::ok(""));
    }
    execute(&hypervisor, args.command, args.json)
}

/// Runs one subcommand (except the serial console stream) and returns what it prints.
pub fn execute(hypervisor: &Hypervisor, command: VmCommand, json: bool) -> Result<Output> {
    match command {
        VmCommand::List => list(hypervisor, json),
        VmCommand::Show { name } => show(hypervisor, &name, json),
        VmCommand::Create(args) => create(hypervisor, args, json),
        VmCommand::Start { name } => {
            hypervisor.start(&name)?;
            Ok(Output::ok(format!("started VM {name}\n")))
        }
        VmCommand::Shutdown { name, timeout } => {
            let outcome = hypervisor.shutdown(&name, Duration::from_secs(timeout))?;
            Ok(Output::ok(match outcome {
                ShutdownOutcome::Graceful => format!("VM {name} shut down\n"),
                ShutdownOutcome::ForcedOff => {
                    format!("VM {name} forced off: no shutdown within {timeout} s\n")
                }
                ShutdownOutcome::AlreadyOff => format!("VM {name} was not running\n"),
            }))
        }
        VmCommand::Kill { name } => {
            hypervisor.force_off(&name)?;
            Ok(Output::ok(format!("VM {name} forced off\n")))
        }
        VmCommand::Reboot { name } => {
            hypervisor.reboot(&name)?;
            Ok(Output::ok(format!("VM {name} asked to reboot\n")))
        }
        VmCommand::Delete { name, with_disks } => {
            let policy = if with_disks {
                VolumePolicy::DeleteDisks
            } else {
                VolumePolicy::Keep
            };
            hypervisor.undefine(&name, policy)?;
            Ok(Output::ok(if with_disks {
                format!("deleted VM {name} and its disk volumes\n")
            } else {
                format!("deleted VM {name} (disks kept)\n")
            }))
        }
        VmCommand::Console { name, .. } => vnc(hypervisor, &name, json),
        VmCommand::Snapshot { command } => snapshot(hypervisor, command, json),
    }
}

fn list(hypervisor: &Hypervisor, json: bool) -> Result<Output> {
    Output::data(&hypervisor.list()?, json, |vms| {
        let mut out = format!("{:<32} {:<12} {}\n", "NAME", "STATE", "AUTOSTART");
        for vm in vms {
            let autostart = if vm.autostart { "yes" } else { "no" };
            let _ = writeln!(out, "{:<32} {:<12} {autostart}", vm.name, vm.state.as_str());
        }
        out
    })
}

fn show(hypervisor: &Hypervisor, name: &str, json: bool) -> Result<Output> {
    Output::data(&hypervisor.info(name)?, json, |info| {
        let summary = &info.summary;
        let mut out = String::new();
        let _ = writeln!(out, "name:       {}", summary.name);
        let _ = writeln!(out, "uuid:       {}", summary.uuid);
        let _ = writeln!(out, "state:      {}", summary.state);
        let _ = writeln!(out, "autostart:  {}", summary.autostart);
        let _ = writeln!(out, "vcpus:      {}", info.vcpus);
        let _ = writeln!(out, "memory:     {} MiB", info.max_memory_kib / 1024);
        let _ = writeln!(out, "cpu time:   {} ms", info.cpu_time_ns / 1_000_000);
        for disk in &info.disks {
            let _ = writeln!(
                out,
                "disk {}:   read {} B, written {} B",
                disk.target, disk.read_bytes, disk.write_bytes
            );
        }
        for nic in &info.nics {
            let _ = writeln!(
                out,
                "nic {}:    received {} B, sent {} B",
                nic.target, nic.rx_bytes, nic.tx_bytes
            );
        }
        out
    })
}

fn create(hypervisor: &Hypervisor, args: CreateArgs, json: bool) -> Result<Output> {
    let host = host_capabilities(args.accel);
    let spec = match &args.spec {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the VM spec {}", path.display()))?;
            serde_json::from_str::<VmSpec>(&text)
                .with_context(|| format!("invalid VM spec {}", path.display()))?
        }
        None => spec_from_flags(&args)?,
    };
    let created = match vm::create(hypervisor, &spec, &host) {
        Err(VmWorkflowError::InvalidSpec { errors }) => {
            let mut message = format!("invalid VM spec ({} problems):", errors.errors().len());
            for error in errors.errors() {
                write!(message, "\n  {error}")?;
            }
            bail!(message);
        }
        created => created?,
    };
    if json {
        let summary = hypervisor.info(&created.name)?.summary;
        return Output::data(&summary, json, |_| String::new());
    }
    let kind = if created.kvm { "kvm" } else { "tcg" };
    Ok(Output::ok(format!(
        "created VM {} ({kind})\n",
        created.name
    )))
}

fn host_capabilities(accel: Accel) -> HostCapabilities {
    let mut host = HostCapabilities::probe();
    match accel {
        Accel::Auto => {}
        Accel::Kvm => host.kvm_usable = true,
        Accel::Tcg => host.kvm_usable = false,
    }
    host
}

/// Builds the spec from `--name ... --disk ...` through its serde form, so that defaults
/// are the ones of the spec file format.
fn spec_from_flags(args: &CreateArgs) -> Result<VmSpec> {
    let mut disks = Vec::new();
    for disk in &args.disk {
        let Some((pool, size)) = disk.split_once(':') else {
            bail!("--disk {disk:?}: expected POOL:SIZE_GIB");
        };
        let size_gib: u64 = size
            .parse()
            .with_context(|| format!("--disk {disk:?}: size {size:?} is not a whole number"))?;
        disks.push(json!({"new_volume": {"pool": pool, "size_gib": size_gib}}));
    }
    for image in &args.image {
        disks.push(json!({"image": {"path": image}}));
    }
    let disks: Vec<_> = disks
        .into_iter()
        .enumerate()
        .map(|(index, source)| json!({"target": virtio_target(index), "source": source}))
        .collect();
    let nics: Vec<_> = args
        .bridge
        .iter()
        .map(|bridge| json!({"source": {"bridge": bridge}}))
        .chain(
            args.network
                .iter()
                .map(|network| json!({"source": {"network": network}})),
        )
        .collect();
    let spec = json!({
        "name": args.name,
        "vcpus": args.vcpus,
        "memory_mib": args.memory_mib,
        "firmware": if args.uefi { "uefi" } else { "bios" },
        "disks": disks,
        "cdrom": args.cdrom,
        "nics": nics,
        "autostart": args.autostart,
    });
    serde_json::from_value(spec).context("invalid VM flags")
}

/// `vda`, `vdb`, ... `vdz`, `vdaa`, ...
fn virtio_target(index: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    let mut suffix = Vec::new();
    let mut rest = index;
    loop {
        suffix.push(LETTERS[rest % 26]);
        if rest < 26 {
            break;
        }
        rest = rest / 26 - 1;
    }
    suffix.reverse();
    format!("vd{}", String::from_utf8_lossy(&suffix))
}

fn vnc(hypervisor: &Hypervisor, name: &str, json: bool) -> Result<Output> {
    let endpoint = hypervisor.vnc_endpoint(name)?;
    if json {
        return Output::data(&endpoint, json, |_| String::new());
    }
    match endpoint {
        Some(endpoint) => Ok(Output::ok(format!(
            "vnc://{}:{}\n",
            endpoint.host, endpoint.port
        ))),
        None => bail!("VM {name} has no VNC display (or it is not running)"),
    }
}

/// How long a console whose stream ended waits for libvirt to report the VM stopped: the
/// stream ends when QEMU exits, a moment before the VM's state changes.
const CONSOLE_END_GRACE: Duration = Duration::from_secs(5);

/// Copies the serial console to stdout until the console stream ends. That is success when
/// the VM stopped, and an error when the VM still runs (another client took the console
/// over). Only the console's output is copied: stdin is not read, so interrupting the
/// command (Ctrl-C) is how to leave a running VM's console.
fn stream_serial_console(hypervisor: &Hypervisor, name: &str) -> Result<()> {
    let mut console = hypervisor.open_serial_console(name)?;
    let mut stdout = std::io::stdout();
    while !console.is_closed() {
        if let Some(output) = console.next_output(Duration::from_secs(1)) {
            stdout.write_all(&output)?;
            stdout.flush()?;
        }
    }
    let deadline = Instant::now() + CONSOLE_END_GRACE;
    loop {
        let state = hypervisor.info(name)?.summary.state;
        if matches!(state, VmState::ShutOff | VmState::Crashed) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the serial console of VM {name} closed while the VM is {state}: another \
                 client took it over"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn snapshot(hypervisor: &Hypervisor, command: SnapshotCommand, json: bool) -> Result<Output> {
    match command {
        SnapshotCommand::Create {
            name,
            snapshot,
            description,
        } => {
            let info = hypervisor.create_snapshot(&name, &snapshot, &description)?;
            Output::data(&info, json, |_| {
                format!("created snapshot {snapshot} of VM {name}\n")
            })
        }
        SnapshotCommand::List { name } => {
            Output::data(&hypervisor.list_snapshots(&name)?, json, |snapshots| {
                let mut out = format!(
                    "{:<24} {:<12} {:<8} {}\n",
                    "NAME", "VM STATE", "CURRENT", "DESCRIPTION"
                );
                for snapshot in snapshots {
                    let current = if snapshot.current { "*" } else { "" };
                    let _ = writeln!(
                        out,
                        "{:<24} {:<12} {current:<8} {}",
                        snapshot.name, snapshot.vm_state, snapshot.description
                    );
                }
                out
            })
        }
        SnapshotCommand::Revert { name, snapshot } => {
            hypervisor.revert_snapshot(&name, &snapshot)?;
            Ok(Output::ok(format!(
                "VM {name} reverted to snapshot {snapshot}\n"
            )))
        }
        SnapshotCommand::Delete { name, snapshot } => {
            hypervisor.delete_snapshot(&name, &snapshot)?;
            Ok(Output::ok(format!(
                "deleted snapshot {snapshot} of VM {name}\n"
            )))
        }
    }
}

#[cfg(test)]
#[path = "vm_cmd_tests.rs"]
mod tests;
