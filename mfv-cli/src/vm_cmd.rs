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

use mfv_client::Client;
use mfv_linux::terminal_text::escape_lines;

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
    /// console over (an error) or the command is interrupted; with --vnc print the loopback
    /// port its VNC display listens on instead (only a display with a password has one).
    Console {
        /// The VM.
        name: String,
        /// Print the VNC display's loopback port (a display with a password has one) instead
        /// of streaming the serial console.
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
            Ok(Output::ok(started_text(&name)))
        }
        VmCommand::Shutdown { name, timeout } => {
            let outcome = match hypervisor.shutdown(&name, Duration::from_secs(timeout))? {
                ShutdownOutcome::Graceful => "graceful",
                ShutdownOutcome::ForcedOff => "forced_off",
                ShutdownOutcome::AlreadyOff => "already_off",
            };
            Ok(Output::ok(shutdown_text(&name, outcome, timeout)))
        }
        VmCommand::Kill { name } => {
            hypervisor.force_off(&name)?;
            Ok(Output::ok(forced_off_text(&name)))
        }
        VmCommand::Reboot { name } => {
            hypervisor.reboot(&name)?;
            Ok(Output::ok(rebooted_text(&name)))
        }
        VmCommand::Delete { name, with_disks } => {
            let policy = if with_disks {
                VolumePolicy::DeleteDisks
            } else {
                VolumePolicy::Keep
            };
            hypervisor.undefine(&name, policy)?;
            Ok(Output::ok(deleted_text(&name, with_disks)))
        }
        VmCommand::Console { name, .. } => vnc(hypervisor, &name, json),
        VmCommand::Snapshot { command } => snapshot(hypervisor, command, json),
    }
}

fn started_text(name: &str) -> String {
    format!("started VM {name}\n")
}

fn forced_off_text(name: &str) -> String {
    format!("VM {name} forced off\n")
}

fn rebooted_text(name: &str) -> String {
    format!("VM {name} asked to reboot\n")
}

fn deleted_text(name: &str, with_disks: bool) -> String {
    if with_disks {
        format!("deleted VM {name} and its disk volumes\n")
    } else {
        format!("deleted VM {name} (disks kept)\n")
    }
}

/// What a shutdown says, by its outcome as the API words it.
fn shutdown_text(name: &str, outcome: &str, timeout: u64) -> String {
    match outcome {
        "graceful" => format!("VM {name} shut down\n"),
        "forced_off" => format!("VM {name} forced off: no shutdown within {timeout} s\n"),
        "already_off" => format!("VM {name} was not running\n"),
        other => format!("VM {name} stopped ({other})\n"),
    }
}

fn list(hypervisor: &Hypervisor, json: bool) -> Result<Output> {
    Output::data(&hypervisor.list()?, json, |vms| {
        vm_table(
            vms.iter()
                .map(|vm| (vm.name.as_str(), vm.state.as_str(), vm.autostart)),
        )
    })
}

/// `NAME  STATE  AUTOSTART`, a line per `(name, state, autostart)`.
fn vm_table<'a>(vms: impl Iterator<Item = (&'a str, &'a str, bool)>) -> String {
    let mut out = format!("{:<32} {:<12} {}\n", "NAME", "STATE", "AUTOSTART");
    for (name, state, autostart) in vms {
        let autostart = if autostart { "yes" } else { "no" };
        let _ = writeln!(out, "{name:<32} {state:<12} {autostart}");
    }
    out
}

/// What `mfv vm show` prints of a VM, wherever its figures come from.
struct VmView<'a> {
    name: &'a str,
    uuid: &'a str,
    state: &'a str,
    autostart: bool,
    vcpus: u32,
    max_memory_kib: u64,
    cpu_time_ns: u64,
    /// `(target, bytes read, bytes written)`.
    disks: Vec<(&'a str, u64, u64)>,
    /// `(target, bytes received, bytes sent)`.
    nics: Vec<(&'a str, u64, u64)>,
}

fn show(hypervisor: &Hypervisor, name: &str, json: bool) -> Result<Output> {
    Output::data(&hypervisor.info(name)?, json, |info| {
        let summary = &info.summary;
        render_show(&VmView {
            name: &summary.name,
            uuid: &summary.uuid,
            state: summary.state.as_str(),
            autostart: summary.autostart,
            vcpus: info.vcpus,
            max_memory_kib: info.max_memory_kib,
            cpu_time_ns: info.cpu_time_ns,
            disks: info
                .disks
                .iter()
                .map(|disk| (disk.target.as_str(), disk.read_bytes, disk.write_bytes))
                .collect(),
            nics: info
                .nics
                .iter()
                .map(|nic| (nic.target.as_str(), nic.rx_bytes, nic.tx_bytes))
                .collect(),
        })
    })
}

fn render_show(vm: &VmView<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name:       {}", vm.name);
    let _ = writeln!(out, "uuid:       {}", vm.uuid);
    let _ = writeln!(out, "state:      {}", vm.state);
    let _ = writeln!(out, "autostart:  {}", vm.autostart);
    let _ = writeln!(out, "vcpus:      {}", vm.vcpus);
    let _ = writeln!(out, "memory:     {} MiB", vm.max_memory_kib / 1024);
    let _ = writeln!(out, "cpu time:   {} ms", vm.cpu_time_ns / 1_000_000);
    for (target, read, written) in &vm.disks {
        let _ = writeln!(out, "disk {target}:   read {read} B, written {written} B");
    }
    for (target, received, sent) in &vm.nics {
        let _ = writeln!(out, "nic {target}:    received {received} B, sent {sent} B");
    }
    out
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
    serde_json::from_value(spec_json_from_flags(args)?).context("invalid VM flags")
}

/// The spec's JSON (the spec file format) from `--name ... --disk ...`.
fn spec_json_from_flags(args: &CreateArgs) -> Result<serde_json::Value> {
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
    Ok(json!({
        "name": args.name,
        "vcpus": args.vcpus,
        "memory_mib": args.memory_mib,
        "firmware": if args.uefi { "uefi" } else { "bios" },
        "disks": disks,
        "cdrom": args.cdrom,
        "nics": nics,
        "autostart": args.autostart,
    }))
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
        None => bail!(
            "VM {name} has no VNC port: it is not running, or its display listens on none (only a \
             display with a password in its spec gets a loopback port; the web console needs none)"
        ),
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
            Output::data(&info, json, |_| snapshot_created_text(&name, &snapshot))
        }
        SnapshotCommand::List { name } => {
            Output::data(&hypervisor.list_snapshots(&name)?, json, |snapshots| {
                snapshot_table(snapshots.iter().map(|snapshot| SnapshotRow {
                    name: &snapshot.name,
                    vm_state: &snapshot.vm_state,
                    current: snapshot.current,
                    description: &snapshot.description,
                }))
            })
        }
        SnapshotCommand::Revert { name, snapshot } => {
            hypervisor.revert_snapshot(&name, &snapshot)?;
            Ok(Output::ok(reverted_text(&name, &snapshot)))
        }
        SnapshotCommand::Delete { name, snapshot } => {
            hypervisor.delete_snapshot(&name, &snapshot)?;
            Ok(Output::ok(snapshot_deleted_text(&name, &snapshot)))
        }
    }
}

/// A snapshot as `mfv vm snapshot list` shows it.
struct SnapshotRow<'a> {
    name: &'a str,
    vm_state: &'a str,
    current: bool,
    description: &'a str,
}

/// `NAME  VM STATE  CURRENT  DESCRIPTION`, a line per snapshot.
fn snapshot_table<'a>(snapshots: impl Iterator<Item = SnapshotRow<'a>>) -> String {
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
}

fn snapshot_created_text(name: &str, snapshot: &str) -> String {
    format!("created snapshot {snapshot} of VM {name}\n")
}

fn reverted_text(name: &str, snapshot: &str) -> String {
    format!("VM {name} reverted to snapshot {snapshot}\n")
}

fn snapshot_deleted_text(name: &str, snapshot: &str) -> String {
    format!("deleted snapshot {snapshot} of VM {name}\n")
}

/// Runs `mfv vm snapshot ...` against a host's API through `client`.
fn snapshot_remote(client: &mut Client, command: SnapshotCommand, json: bool) -> Result<Output> {
    match command {
        SnapshotCommand::Create {
            name,
            snapshot,
            description,
        } => {
            let taken =
                client.create_snapshot(&name, &snapshot, &description, &mut show_progress)?;
            Output::data(&taken, json, |_| snapshot_created_text(&name, &snapshot))
        }
        SnapshotCommand::List { name } => {
            Output::data(&client.snapshots(&name)?, json, |snapshots| {
                snapshot_table(snapshots.iter().map(|snapshot| SnapshotRow {
                    name: &snapshot.name,
                    vm_state: &snapshot.vm_state,
                    current: snapshot.current,
                    description: &snapshot.description,
                }))
            })
        }
        SnapshotCommand::Revert { name, snapshot } => {
            client.revert_snapshot(&name, &snapshot)?;
            Ok(Output::ok(reverted_text(&name, &snapshot)))
        }
        SnapshotCommand::Delete { name, snapshot } => {
            client.delete_snapshot(&name, &snapshot)?;
            Ok(Output::ok(snapshot_deleted_text(&name, &snapshot)))
        }
    }
}

/// Runs `mfv vm ...` against a host's API through `client`: the same subcommands and output
/// as on the host, but the consoles, which the web pages offer.
pub fn run_remote(args: VmArgs, client: &mut Client) -> Result<Output> {
    let json = args.json;
    match args.command {
        VmCommand::List => Output::data(&client.vms()?, json, |vms| {
            vm_table(
                vms.iter()
                    .map(|vm| (vm.name.as_str(), vm.state.as_str(), vm.autostart)),
            )
        }),
        VmCommand::Show { name } => Output::data(&client.vm(&name)?, json, |vm| {
            render_show(&VmView {
                name: &vm.summary.name,
                uuid: &vm.summary.uuid,
                state: &vm.summary.state,
                autostart: vm.summary.autostart,
                vcpus: vm.vcpus,
                max_memory_kib: vm.max_memory_kib,
                cpu_time_ns: vm.cpu_time_ns,
                disks: vm
                    .disks
                    .iter()
                    .map(|disk| (disk.target.as_str(), disk.read_bytes, disk.write_bytes))
                    .collect(),
                nics: vm
                    .nics
                    .iter()
                    .map(|nic| (nic.target.as_str(), nic.rx_bytes, nic.tx_bytes))
                    .collect(),
            })
        }),
        VmCommand::Create(args) => {
            if args.accel != Accel::Auto {
                bail!("--accel cannot be chosen with --remote: the host uses KVM when it can");
            }
            let spec = match &args.spec {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read the VM spec {}", path.display()))?;
                    serde_json::from_str::<serde_json::Value>(&text)
                        .with_context(|| format!("invalid VM spec {}: not JSON", path.display()))?
                }
                None => spec_json_from_flags(&args)?,
            };
            let created = client.create_vm(&spec, &mut show_progress)?;
            Output::data(&created, json, |vm| format!("created VM {}\n", vm.name))
        }
        VmCommand::Start { name } => {
            client.start_vm(&name)?;
            Ok(Output::ok(started_text(&name)))
        }
        VmCommand::Shutdown { name, timeout } => {
            let result =
                client.shutdown_vm(&name, Duration::from_secs(timeout), &mut show_progress)?;
            Ok(Output::ok(shutdown_text(&name, &result.outcome, timeout)))
        }
        VmCommand::Kill { name } => {
            client.force_off_vm(&name)?;
            Ok(Output::ok(forced_off_text(&name)))
        }
        VmCommand::Reboot { name } => {
            client.reboot_vm(&name)?;
            Ok(Output::ok(rebooted_text(&name)))
        }
        VmCommand::Delete { name, with_disks } => {
            client.delete_vm(&name, with_disks)?;
            Ok(Output::ok(deleted_text(&name, with_disks)))
        }
        VmCommand::Console { .. } => bail!(
            "mfv vm console cannot run with --remote: open the VM's console in the host's web \
             pages"
        ),
        VmCommand::Snapshot { command } => snapshot_remote(client, command, json),
    }
}

/// Shows a task's progress on standard error as it changes: the operator waits for it.
fn show_progress(task: &mfv_client::Task) {
    let percent = task
        .progress
        .map(|percent| format!(" {percent}%"))
        .unwrap_or_default();
    let line = format!(
        "mfv: task {} ({}){percent}: {}\n",
        task.id, task.kind, task.message
    );
    let _ = std::io::stderr().write_all(escape_lines(&line).as_bytes());
}

#[cfg(test)]
#[path = "vm_cmd_tests.rs"]
mod tests;
