//! Getting the host ready to run VMs, and saying how they will run.
//!
//! Coldplug loads drivers for the devices the boot needs; what VMs need is not such a device: the
//! processor's modules, among them the KVM module for its vendor ([`prepare`], which PID 1 runs
//! once the web server answers and before libvirtd starts: coldplug leaves the processor's
//! modaliases out, see [`Drivers::boot_loader`]), tun, bridge and vhost_net for their network,
//! and the device mapper for the logical volumes of LVM storage pools ([`load_vm_modules`],
//! which the VM keeper calls before it restores anything). Both wait so that the web server
//! answers sooner. Without udev, the kernel creates /dev/kvm for root alone, while QEMU runs as
//! its own user in the `kvm` group: the node is opened to that group here. Then the operator is
//! told whether VMs get KVM or QEMU's software emulation (TCG), and why, because a TCG host is many
//! times slower and the cause (virtualization off in the firmware, or a VM without nested
//! virtualization) is something they can fix.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use mfv_api::Virtualization as VmAcceleration;
use mfv_probe::modules::ModuleName;
use mfv_probe::{Virtualization, read_cpu_at};

use mfv_probe::modules::StepStatus;
use mfv_probe::{DriverLoader, list_devices_at};

use crate::hardware::{Drivers, PROCESSOR_MODALIAS_PREFIX, ProbeSettings};

/// The modules VM networking needs: tap devices, the VM bridge, in-kernel virtio-net.
pub const VM_NETWORK_MODULES: [&str; 3] = ["tun", "bridge", "vhost_net"];

/// The modules VM storage needs: the device mapper, which LVM's logical volumes (the volumes of
/// logical storage pools) are made of.
pub const VM_STORAGE_MODULES: [&str; 1] = ["dm_mod"];

/// The mode /dev/kvm gets: read-write for root and the `kvm` group.
const KVM_NODE_MODE: u32 = 0o660;

/// What [`prepare`] did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preparation {
    /// How VMs will run.
    pub acceleration: VmAcceleration,
    /// Console lines: each module load that did not go through, what was done to /dev/kvm,
    /// and last the verdict (`virtualization: KVM ...` or `virtualization: TCG ...`).
    pub lines: Vec<String>,
}

/// Loads the modules of the processor's modaliases, then the KVM module for the processor
/// (when it shows VT-x or AMD-V) through `drivers` (the module index coldplug read; read here
/// when `None`), unless `probe` says drivers are not loaded (`mfv.coldplug=off`); gives /dev/kvm
/// to `kvm_group` (read-write for the group); then reads whether /dev/kvm can be used.
pub fn prepare(
    probe: &ProbeSettings,
    drivers: Option<&Arc<Drivers>>,
    kvm_group: Option<u32>,
) -> Preparation {
    let mut lines = Vec::new();
    let cpu = read_cpu_at(&probe.roots.proc, &probe.roots.dev);
    let kvm_module = cpu.virtualization.map(|extension| match extension {
        Virtualization::Vmx => "kvm_intel",
        Virtualization::Svm => "kvm_amd",
    });
    with_drivers(probe, drivers, &mut lines, |drivers, lines| {
        load_processor_modules(&probe.roots.sysfs, drivers, lines);
        load_named(drivers, kvm_module.into_iter(), lines);
    });
    let node = probe.roots.dev.join("kvm");
    if let Some(gid) = kvm_group {
        if let Err(error) = open_to_group(&node, gid) {
            lines.push(format!("virtualization: {error}"));
        }
    }
    let kvm = read_cpu_at(&probe.roots.proc, &probe.roots.dev).kvm;
    let (acceleration, verdict) = match (kvm.usable, cpu.virtualization) {
        (true, Some(extension)) => (
            VmAcceleration::Kvm,
            format!(
                "virtualization: KVM ({}) through {}",
                extension_name(extension),
                node.display()
            ),
        ),
        (true, None) => (
            VmAcceleration::Kvm,
            format!("virtualization: KVM through {}", node.display()),
        ),
        (false, None) => (
            VmAcceleration::Tcg,
            "virtualization: TCG (software emulation, many times slower): the processor shows \
             neither VT-x nor AMD-V; turn virtualization on in the firmware, or give this \
             machine nested virtualization if it is a VM"
                .to_owned(),
        ),
        (false, Some(extension)) => (
            VmAcceleration::Tcg,
            format!(
                "virtualization: TCG (software emulation, many times slower): the processor \
                 has {} but {}",
                extension_name(extension),
                kvm.reason.as_deref().unwrap_or("/dev/kvm cannot be used")
            ),
        ),
    };
    lines.push(verdict);
    Preparation {
        acceleration,
        lines,
    }
}

/// Loads [`VM_NETWORK_MODULES`] and [`VM_STORAGE_MODULES`] as [`prepare`] loads the KVM module;
/// returns a `virtualization: ` line for each that did not load, or why none was.
pub fn load_vm_modules(probe: &ProbeSettings, drivers: Option<&Arc<Drivers>>) -> Vec<String> {
    let mut lines = Vec::new();
    with_drivers(probe, drivers, &mut lines, |drivers, lines| {
        load_named(
            drivers,
            VM_NETWORK_MODULES.into_iter().chain(VM_STORAGE_MODULES),
            lines,
        );
    });
    lines
}

/// Runs `load` with `drivers` (read here when `None`) unless `probe` says drivers are not
/// loaded; says in `lines` why nothing was loaded otherwise.
fn with_drivers(
    probe: &ProbeSettings,
    drivers: Option<&Arc<Drivers>>,
    lines: &mut Vec<String>,
    load: impl FnOnce(&Drivers, &mut Vec<String>),
) {
    if !probe.enabled {
        lines.push("virtualization: mfv.coldplug=off: no module loaded".to_owned());
        return;
    }
    match Drivers::shared_or_open(probe, drivers) {
        Ok(drivers) => load(&drivers, lines),
        Err(error) => lines.push(format!(
            "virtualization: no module loaded: {}",
            mfv_linux::error_chain(&error)
        )),
    }
}

/// Loads `modules` with their dependencies, adding a line to `lines` for each that did not load.
fn load_named<'m>(
    drivers: &Drivers,
    modules: impl Iterator<Item = &'m str>,
    lines: &mut Vec<String>,
) {
    for module in modules {
        let outcome = drivers.load_module(&ModuleName::new(module));
        if !outcome.is_available() {
            lines.push(format!("virtualization: {outcome}"));
        }
    }
}

/// Loads the modules of every distinct processor modalias under `sysfs_root` (the devices of
/// the `cpu` bus), adding a line to `lines` for each module loaded or failed.
fn load_processor_modules(sysfs_root: &Path, drivers: &Drivers, lines: &mut Vec<String>) {
    let listing = match list_devices_at(sysfs_root) {
        Ok(listing) => listing,
        Err(error) => {
            lines.push(format!(
                "virtualization: the processor's modules not loaded: {}",
                mfv_linux::error_chain(&error)
            ));
            return;
        }
    };
    let modaliases: BTreeSet<&str> = listing
        .devices
        .iter()
        .filter_map(|device| device.modalias.as_deref())
        .filter(|modalias| modalias.starts_with(PROCESSOR_MODALIAS_PREFIX))
        .collect();
    let mut loader = drivers.loader();
    for modalias in modaliases {
        for step in loader.load_for_modalias(modalias) {
            match step.status {
                StepStatus::Loaded => lines.push(format!(
                    "virtualization: loaded {} for the processor",
                    step.module
                )),
                StepStatus::Failed if !step.soft => lines.push(format!(
                    "virtualization: FAILED {} for the processor: {}",
                    step.module,
                    step.reason.as_deref().unwrap_or("no reason given")
                )),
                _ => {}
            }
        }
    }
}

fn extension_name(extension: Virtualization) -> &'static str {
    match extension {
        Virtualization::Vmx => "Intel VT-x",
        Virtualization::Svm => "AMD-V",
    }
}

/// Gives the device node `node` to group `gid`, read-write for it; nothing when it is absent.
fn open_to_group(node: &Path, gid: u32) -> Result<(), String> {
    if !node.exists() {
        return Ok(());
    }
    std::os::unix::fs::chown(node, None, Some(gid))
        .and_then(|()| {
            std::fs::set_permissions(node, std::fs::Permissions::from_mode(KVM_NODE_MODE))
        })
        .map_err(|error| format!("cannot give {} to group {gid}: {error}", node.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfv_config::cmdline::KernelCmdline;
    use mfv_probe::SystemRoots;
    use std::fs;

    fn tree(flags: &str) -> (tempfile::TempDir, ProbeSettings) {
        let dir = tempfile::tempdir().unwrap();
        let roots = SystemRoots {
            sysfs: dir.path().join("sys"),
            proc: dir.path().join("proc"),
            dev: dir.path().join("dev"),
        };
        fs::create_dir_all(&roots.proc).unwrap();
        fs::create_dir_all(&roots.dev).unwrap();
        fs::write(
            roots.proc.join("cpuinfo"),
            format!("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu {flags}\n\n"),
        )
        .unwrap();
        let probe = ProbeSettings::from_cmdline(
            &KernelCmdline::parse("mfv.coldplug=off"),
            roots,
            &dir.path().join("modules"),
        );
        (dir, probe)
    }

    #[test]
    fn a_processor_without_extensions_runs_tcg_and_says_what_to_do() {
        let (_dir, probe) = tree("sse2");
        let preparation = prepare(&probe, None, None);
        assert_eq!(preparation.acceleration, VmAcceleration::Tcg);
        assert_eq!(
            preparation.lines[0],
            "virtualization: mfv.coldplug=off: no module loaded"
        );
        let verdict = preparation.lines.last().unwrap();
        assert!(
            verdict.starts_with("virtualization: TCG (software emulation, many times slower): the processor shows neither VT-x nor AMD-V; turn virtualization on in the firmware"),
            "{verdict}"
        );
    }

    #[test]
    fn the_vm_modules_name_a_missing_module_index() {
        let (dir, probe) = tree("svm");
        assert_eq!(
            load_vm_modules(&probe, None),
            ["virtualization: mfv.coldplug=off: no module loaded"]
        );
        let probe = ProbeSettings::from_cmdline(
            &KernelCmdline::parse(""),
            probe.roots.clone(),
            &dir.path().join("modules"),
        );
        assert_eq!(
            load_vm_modules(&probe, None),
            [format!(
                "virtualization: no module loaded: cannot read the module index in {modules}: \
                 cannot read {modules}/modules.alias: No such file or directory (os error 2)",
                modules = dir.path().join("modules").display()
            )]
        );
    }

    #[test]
    fn vt_x_without_a_kvm_node_names_the_node() {
        let (_dir, probe) = tree("vmx sse2");
        let verdict = prepare(&probe, None, None).lines.pop().unwrap();
        assert!(
            verdict.contains("the processor has Intel VT-x but ")
                && verdict.contains("kvm does not exist"),
            "{verdict}"
        );
    }

    #[test]
    fn a_usable_kvm_node_gives_kvm_and_is_opened_to_the_group() {
        let (_dir, probe) = tree("svm");
        // A regular file stands in for the device node: the check opens it read-write.
        let node = probe.roots.dev.join("kvm");
        fs::write(&node, "").unwrap();
        let gid = nix_gid();
        let preparation = prepare(&probe, None, Some(gid));
        let mode = fs::metadata(&node).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let verdict = preparation.lines.last().unwrap();
        if preparation.acceleration == VmAcceleration::Kvm {
            assert!(
                verdict.starts_with("virtualization: KVM (AMD-V) through "),
                "{verdict}"
            );
        } else {
            // The probe insists on a character device: a regular file is named as such.
            assert!(verdict.contains("AMD-V but"), "{verdict}");
        }
    }

    #[test]
    fn the_processor_modules_and_the_kvm_module_say_what_did_not_load() {
        let (dir, probe) = tree("vmx");
        let modules = dir.path().join("modules");
        fs::create_dir_all(&modules).unwrap();
        crate::hardware::write_empty_module_index(&modules);
        let probe = ProbeSettings::from_cmdline(&KernelCmdline::parse(""), probe.roots, &modules);
        // No sysfs at all: the processors cannot be listed; and the index has no kvm_intel.
        let lines = prepare(&probe, None, None).lines;
        assert!(
            lines[0].starts_with("virtualization: the processor's modules not loaded: "),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("virtualization: ") && lines[1].contains("kvm_intel"),
            "{lines:?}"
        );

        // A processor whose modalias no module matches: nothing to say for it.
        let cpu = probe.roots.sysfs.join("bus/cpu/devices/cpu0");
        fs::create_dir_all(&cpu).unwrap();
        fs::write(
            cpu.join("modalias"),
            "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001\n",
        )
        .unwrap();
        let lines = prepare(&probe, None, None).lines;
        assert!(
            lines[0].starts_with("virtualization: ") && lines[0].contains("kvm_intel"),
            "{lines:?}"
        );
    }

    #[test]
    fn coldplug_at_boot_leaves_the_processor_modaliases_out() {
        #[derive(Default)]
        struct Recording(Vec<String>);
        impl DriverLoader for Recording {
            fn load_for_modalias(&mut self, modalias: &str) -> Vec<mfv_probe::ModuleStep> {
                self.0.push(modalias.to_owned());
                vec![mfv_probe::ModuleStep::new("e1000", StepStatus::Loaded)]
            }
        }
        let mut loader = crate::hardware::WithoutProcessorModules(Recording::default());
        assert!(
            loader
                .load_for_modalias("cpu:type:x86,ven0000fam0006mod003F:feature:,0000")
                .is_empty()
        );
        let pci = "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00";
        assert_eq!(loader.load_for_modalias(pci).len(), 1);
        assert_eq!(loader.0.0, [pci]);
    }

    /// The group of this process, which it may always chown its own files to.
    fn nix_gid() -> u32 {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        fs::metadata(dir.path()).unwrap().gid()
    }
}
