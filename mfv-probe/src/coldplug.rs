//! Coldplug: load the drivers of every device present, pass after pass, until nothing new appears.
//!
//! Loading one driver makes new devices (virtio_pci creates virtio devices, ahci SCSI disks,
//! a USB host controller USB devices), so one pass is not enough: [`coldplug`] lists the
//! devices, loads the modules for every modalias it has not handled yet, gives the kernel a
//! moment for the devices those modules create, and repeats until a pass finds nothing new or
//! the deadline passes. The [`ColdplugReport`] says what happened, for the console
//! ([`fmt::Display`]) and as JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::devices::{device_names_at, list_devices_at};
use crate::modules::{
    LoadOutcome, ModuleIndex, ModuleLoader, ModuleName, ModuleOptions, StepRole, StepStatus,
    error_chain, load_with_dependencies,
};
use crate::{Device, ProbeError, ProbeIssue};

/// Loads the driver modules for one modalias; the privileged part of coldplug and hotplug.
///
/// [`ModuleDriverLoader`] is the real one (module index, options, kernel); tests use fakes
/// that record the calls.
pub trait DriverLoader {
    /// Resolves `modalias` and loads every module it names, dependencies first. Returns one
    /// step per module in load order; empty when no module matches the modalias.
    fn load_for_modalias(&mut self, modalias: &str) -> Vec<ModuleStep>;
}

/// What happened to one module while loading the driver for a modalias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleStep {
    /// The module, e.g. `virtio_net`, or a dependency of it, e.g. `net_failover`.
    pub module: ModuleName,
    /// What happened to it.
    pub status: StepStatus,
    /// Why it failed or was not loaded (the error and its causes); `None` otherwise.
    pub reason: Option<String>,
    /// A soft dependency (modules.softdep): its failure does not stop the driver from loading
    /// and is not counted as a failure. Serialized only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub soft: bool,
}

impl ModuleStep {
    /// A step without a reason.
    pub fn new(module: &str, status: StepStatus) -> Self {
        ModuleStep {
            module: ModuleName::new(module),
            status,
            reason: None,
            soft: false,
        }
    }
}

/// The real [`DriverLoader`]: resolves a modalias with a [`ModuleIndex`] and loads each module
/// it names with [`load_with_dependencies`], honouring the [`ModuleOptions`] (parameters and
/// blacklist).
#[derive(Debug)]
pub struct ModuleDriverLoader<'a, L: ModuleLoader> {
    index: &'a ModuleIndex,
    options: &'a ModuleOptions,
    loader: L,
}

impl<'a, L: ModuleLoader> ModuleDriverLoader<'a, L> {
    /// Loads through `loader` (a [`crate::modules::KernelModuleLoader`] on a real system).
    pub fn new(index: &'a ModuleIndex, options: &'a ModuleOptions, loader: L) -> Self {
        ModuleDriverLoader {
            index,
            options,
            loader,
        }
    }

    /// The module loader, e.g. to look at what a recording fake was given.
    pub fn loader(&self) -> &L {
        &self.loader
    }
}

impl<L: ModuleLoader> DriverLoader for ModuleDriverLoader<'_, L> {
    fn load_for_modalias(&mut self, modalias: &str) -> Vec<ModuleStep> {
        let mut steps = Vec::new();
        for module in self.index.resolve(modalias) {
            let outcome =
                load_with_dependencies(self.index, &module, self.options, &mut self.loader);
            steps.extend(module_steps(outcome));
        }
        steps
    }
}

/// The steps of one [`load_with_dependencies`] outcome; its error goes to the step that
/// failed, or to a failed step for the module asked for when loading stopped before it. Each
/// failed soft dependency gets its own error (they come in the same order as the steps).
fn module_steps(outcome: LoadOutcome) -> Vec<ModuleStep> {
    let reason = outcome.error.as_ref().map(|error| error_chain(error));
    let mut soft_reasons = outcome
        .soft_dependency_errors
        .iter()
        .map(|error| error_chain(error));
    let mut steps: Vec<ModuleStep> = outcome
        .steps
        .into_iter()
        .map(|step| {
            let soft = matches!(step.role, StepRole::SoftPre | StepRole::SoftPost);
            let reason = if soft && step.status == StepStatus::Failed {
                soft_reasons.next()
            } else {
                None
            };
            ModuleStep {
                module: step.module,
                status: step.status,
                reason,
                soft,
            }
        })
        .collect();
    if let Some(reason) = reason {
        match steps.last_mut() {
            Some(last) if last.status == StepStatus::Failed => last.reason = Some(reason),
            _ => steps.push(ModuleStep {
                module: outcome.module,
                status: StepStatus::Failed,
                reason: Some(reason),
                soft: false,
            }),
        }
    }
    steps
}

/// Limits of one coldplug run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdplugOptions {
    /// Coldplug stops when this much time has passed since it started, settled or not.
    pub deadline: Duration,
    /// After a pass that changed something, the kernel is given this long without a new
    /// device before coldplug takes the hardware as settled. Devices that appear later (a
    /// slow disk scan) are hotplug's job.
    pub quiet_period: Duration,
    /// How often the device list is looked at while waiting for the kernel.
    pub poll_interval: Duration,
}

impl ColdplugOptions {
    /// The defaults (250 ms quiet period, 10 ms polls) with the given deadline.
    pub fn with_deadline(deadline: Duration) -> Self {
        ColdplugOptions {
            deadline,
            quiet_period: Duration::from_millis(250),
            poll_interval: Duration::from_millis(10),
        }
    }
}

impl Default for ColdplugOptions {
    /// A 10 s deadline and [`ColdplugOptions::with_deadline`]'s defaults.
    fn default() -> Self {
        ColdplugOptions::with_deadline(Duration::from_secs(10))
    }
}

/// Coldplug could not start: the device list could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ColdplugError {
    /// `<sysfs_root>/bus` could not be listed (is sysfs mounted?).
    #[error("cannot list the devices")]
    ListDevices(#[source] ProbeError),
}

/// How a coldplug run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColdplugEnd {
    /// A pass found no new device and loaded nothing, and no device appeared during the quiet
    /// period after it.
    Settled,
    /// The deadline passed first; devices may still be without their driver.
    DeadlinePassed,
    /// The device list could not be read any more after the first pass (the reason is in
    /// [`ColdplugReport::issues`]); the report shows the last list that could be read.
    ListingFailed,
}

/// The modules loaded for one modalias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModaliasLoad {
    /// The modalias, e.g. `virtio:d00000001v00001AF4`.
    pub modalias: String,
    /// The pass (from 1) that handled it.
    pub pass: u32,
    /// The devices (relative to the sysfs root) with this modalias.
    pub devices: Vec<PathBuf>,
    /// One step per module, dependencies first; empty when no module matches.
    pub steps: Vec<ModuleStep>,
}

/// A device with a modalias that has no driver when coldplug ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnboundDevice {
    /// The bus, e.g. `pci`.
    pub bus: String,
    /// The device's name on its bus, e.g. `0000:00:02.0`.
    pub name: String,
    /// The device directory relative to the sysfs root.
    pub path: PathBuf,
    /// Its modalias.
    pub modalias: String,
    /// True when a module for it was loaded, loaded before or built in, yet no driver took
    /// the device: worth a look, unlike a device no module in the image matches.
    pub has_module: bool,
}

/// What a coldplug run did. Serializes as stable JSON; [`fmt::Display`] gives the console text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColdplugReport {
    /// How the run ended.
    pub end: ColdplugEnd,
    /// The deadline it ran under, in milliseconds.
    pub deadline_ms: u64,
    /// Number of passes over the device list.
    pub passes: u32,
    /// Time from start to end, in milliseconds.
    pub elapsed_ms: u64,
    /// Number of devices on all buses at the end.
    pub devices: usize,
    /// Every modalias handled, in the order they were handled.
    pub modaliases: Vec<ModaliasLoad>,
    /// Devices with a modalias but without a driver at the end, sorted by bus and name.
    pub unbound: Vec<UnboundDevice>,
    /// Sysfs entries that could not be read, each once.
    pub issues: Vec<ProbeIssue>,
}

impl ColdplugReport {
    /// Every module step with the modalias it was for, in load order.
    pub fn steps(&self) -> impl Iterator<Item = (&str, &ModuleStep)> {
        self.modaliases.iter().flat_map(|load| {
            load.steps
                .iter()
                .map(move |step| (load.modalias.as_str(), step))
        })
    }

    /// The modules loaded now, in load order.
    pub fn loaded_modules(&self) -> Vec<&str> {
        self.steps()
            .filter(|(_, step)| step.status == StepStatus::Loaded)
            .map(|(_, step)| step.module.as_str())
            .collect()
    }

    /// The failed steps: `(modalias, module, reason)`. Soft dependencies that failed are not
    /// failures: the driver loaded without them.
    pub fn failures(&self) -> Vec<(&str, &str, &str)> {
        self.steps()
            .filter(|(_, step)| step.status == StepStatus::Failed && !step.soft)
            .map(|(modalias, step)| (modalias, step.module.as_str(), step_reason(step)))
            .collect()
    }

    /// The modules skipped because they are blacklisted, each once.
    pub fn blacklisted_modules(&self) -> Vec<&str> {
        let mut modules: Vec<&str> = self
            .steps()
            .filter(|(_, step)| step.status == StepStatus::Blacklisted)
            .map(|(_, step)| step.module.as_str())
            .collect();
        modules.sort_unstable();
        modules.dedup();
        modules
    }
}

/// The reason of a failed step; a loader that gives none still gets a readable line.
fn step_reason(step: &ModuleStep) -> &str {
    step.reason.as_deref().unwrap_or("no reason given")
}

/// Buses whose driverless devices the console text lists one by one; driverless devices on
/// other buses (ACPI, CPU, platform...) are common and only counted there.
const LISTED_UNBOUND_BUSES: [&str; 7] = ["pci", "usb", "virtio", "scsi", "serio", "hid", "ccw"];

impl fmt::Display for ColdplugReport {
    /// The console text. First line:
    /// `coldplug: settled after 3 passes in 412 ms: 57 devices, 9 modules loaded, 1 failed, 1 blacklisted, 2 without driver`
    /// (or `coldplug: deadline of 10000 ms passed after ...`, or `coldplug: device list
    /// unreadable after ...`; `1 pass` for a single pass), then one indented line per
    /// module loaded (`loaded e1000 for pci:v...`), failed (`FAILED ahci for pci:v...: reason`),
    /// soft dependency that failed (`soft dependency crct10dif_pclmul not loaded for scsi:...:
    /// reason`, not counted as failed),
    /// blacklisted (`blacklisted floppy for acpi:PNP0700:`), driverless device on a hardware bus
    /// (`no driver: pci 0000:00:02.0 pci:v...`, with ` (module loaded)` when a module for it is
    /// in the kernel), a count of the other driverless devices, and each issue
    /// (`issue: cannot read ...`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            ColdplugEnd::Settled => write!(f, "coldplug: settled")?,
            ColdplugEnd::DeadlinePassed => {
                write!(f, "coldplug: deadline of {} ms passed", self.deadline_ms)?;
            }
            ColdplugEnd::ListingFailed => write!(f, "coldplug: device list unreadable")?,
        }
        writeln!(
            f,
            " after {} {} in {} ms: {} devices, {} modules loaded, {} failed, {} blacklisted, {} without driver",
            self.passes,
            if self.passes == 1 { "pass" } else { "passes" },
            self.elapsed_ms,
            self.devices,
            self.loaded_modules().len(),
            self.failures().len(),
            self.blacklisted_modules().len(),
            self.unbound.len(),
        )?;
        for (modalias, step) in self.steps() {
            let module = &step.module;
            match step.status {
                StepStatus::Loaded => writeln!(f, "  loaded {module} for {modalias}")?,
                StepStatus::Failed if step.soft => {
                    let reason = step_reason(step);
                    writeln!(
                        f,
                        "  soft dependency {module} not loaded for {modalias}: {reason}"
                    )?;
                }
                StepStatus::Failed => {
                    let reason = step_reason(step);
                    writeln!(f, "  FAILED {module} for {modalias}: {reason}")?;
                }
                StepStatus::Blacklisted => {
                    writeln!(f, "  blacklisted {module} for {modalias}")?;
                }
                StepStatus::AlreadyLoaded | StepStatus::Builtin => {}
            }
        }
        let (listed, counted): (Vec<&UnboundDevice>, Vec<&UnboundDevice>) = self
            .unbound
            .iter()
            .partition(|device| LISTED_UNBOUND_BUSES.contains(&device.bus.as_str()));
        for device in listed {
            let note = if device.has_module {
                " (module loaded)"
            } else {
                ""
            };
            writeln!(
                f,
                "  no driver: {} {} {}{note}",
                device.bus, device.name, device.modalias
            )?;
        }
        if !counted.is_empty() {
            let buses: BTreeSet<&str> = counted.iter().map(|device| device.bus.as_str()).collect();
            let buses: Vec<&str> = buses.into_iter().collect();
            writeln!(
                f,
                "  no driver: {} more on {}",
                counted.len(),
                buses.join(", ")
            )?;
        }
        for issue in &self.issues {
            writeln!(f, "  issue: {issue}")?;
        }
        Ok(())
    }
}

/// Loads the drivers of every device under `sysfs_root` through `loader`, pass after pass,
/// until a pass finds nothing new or `options.deadline` passes.
///
/// Each modalias is handled once, also when it failed. Fails only when the very first device
/// listing cannot be made; later unreadable entries are recorded in
/// [`ColdplugReport::issues`]. Never panics.
pub fn coldplug(
    sysfs_root: impl AsRef<Path>,
    loader: &mut dyn DriverLoader,
    options: &ColdplugOptions,
) -> Result<ColdplugReport, ColdplugError> {
    let root = sysfs_root.as_ref();
    let start = Instant::now();
    let deadline = start + options.deadline;
    let mut run = Run::default();
    let mut end = ColdplugEnd::Settled;
    let mut last_devices = Vec::new();
    let mut passes = 0;
    loop {
        passes += 1;
        let listing = match list_devices_at(root) {
            Ok(listing) => listing,
            Err(error) if passes == 1 => return Err(ColdplugError::ListDevices(error)),
            Err(error) => {
                run.note(ProbeIssue::from_error(&error));
                end = ColdplugEnd::ListingFailed;
                break;
            }
        };
        for issue in listing.issues {
            run.note(issue);
        }
        let outcome = run.pass(passes, &listing.devices, loader, deadline);
        last_devices = listing.devices;
        if outcome.deadline_passed {
            end = ColdplugEnd::DeadlinePassed;
            break;
        }
        let changed = outcome.loaded || (passes > 1 && outcome.new_devices);
        if !changed {
            break;
        }
        let listed: BTreeSet<(String, String)> = last_devices
            .iter()
            .map(|device| (device.bus.clone(), device.name.clone()))
            .collect();
        match wait_for_new_devices(root, &listed, options, deadline) {
            Wait::NewDevices | Wait::Quiet => {}
            Wait::DeadlinePassed => {
                end = ColdplugEnd::DeadlinePassed;
                break;
            }
        }
    }
    let unbound = run.unbound(&last_devices);
    Ok(ColdplugReport {
        end,
        deadline_ms: millis(options.deadline),
        passes,
        elapsed_ms: millis(start.elapsed()),
        devices: last_devices.len(),
        modaliases: run.loads,
        unbound,
        issues: run.issues,
    })
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What a run has done so far.
#[derive(Default)]
struct Run {
    /// Devices seen in any pass.
    known: BTreeSet<PathBuf>,
    /// Index into `loads` by modalias.
    handled: BTreeMap<String, usize>,
    loads: Vec<ModaliasLoad>,
    issue_messages: BTreeSet<String>,
    issues: Vec<ProbeIssue>,
}

/// What one pass found.
struct PassOutcome {
    new_devices: bool,
    loaded: bool,
    deadline_passed: bool,
}

impl Run {
    /// Records an issue unless the same one was recorded in an earlier pass.
    fn note(&mut self, issue: ProbeIssue) {
        if self.issue_messages.insert(issue.message.clone()) {
            self.issues.push(issue);
        }
    }

    /// Handles the new devices and modaliases of one listing.
    fn pass(
        &mut self,
        pass: u32,
        devices: &[Device],
        loader: &mut dyn DriverLoader,
        deadline: Instant,
    ) -> PassOutcome {
        let mut outcome = PassOutcome {
            new_devices: false,
            loaded: false,
            deadline_passed: false,
        };
        for device in devices {
            if !self.known.insert(device.path.clone()) {
                continue;
            }
            outcome.new_devices = true;
            let Some(modalias) = &device.modalias else {
                continue;
            };
            if let Some(&index) = self.handled.get(modalias) {
                self.loads[index].devices.push(device.path.clone());
                continue;
            }
            if Instant::now() >= deadline {
                outcome.deadline_passed = true;
                continue;
            }
            let steps = loader.load_for_modalias(modalias);
            outcome.loaded |= steps.iter().any(|step| step.status == StepStatus::Loaded);
            self.handled.insert(modalias.clone(), self.loads.len());
            self.loads.push(ModaliasLoad {
                modalias: modalias.clone(),
                pass,
                devices: vec![device.path.clone()],
                steps,
            });
        }
        outcome
    }

    /// The devices with a modalias and no driver.
    fn unbound(&self, devices: &[Device]) -> Vec<UnboundDevice> {
        devices
            .iter()
            .filter(|device| device.driver.is_none())
            .filter_map(|device| {
                let modalias = device.modalias.as_ref()?;
                let has_module = self.handled.get(modalias).is_some_and(|&index| {
                    self.loads[index].steps.iter().any(|step| {
                        matches!(
                            step.status,
                            StepStatus::Loaded | StepStatus::AlreadyLoaded | StepStatus::Builtin
                        )
                    })
                });
                Some(UnboundDevice {
                    bus: device.bus.clone(),
                    name: device.name.clone(),
                    path: device.path.clone(),
                    modalias: modalias.clone(),
                    has_module,
                })
            })
            .collect()
    }
}

/// How waiting for the kernel ended.
enum Wait {
    /// A device appeared or went away: time for another pass.
    NewDevices,
    /// Nothing changed for the quiet period.
    Quiet,
    /// The deadline came first.
    DeadlinePassed,
}

/// Polls the device names until they differ from `listed` (the devices of the last pass, so a
/// device a module created while it loaded counts as new at once), the quiet period passes
/// without a change, or the deadline passes.
fn wait_for_new_devices(
    root: &Path,
    listed: &BTreeSet<(String, String)>,
    options: &ColdplugOptions,
    deadline: Instant,
) -> Wait {
    let quiet_until = Instant::now() + options.quiet_period;
    loop {
        // Unreadable entries are recorded by the pass that follows.
        let changed = device_names_at(root, &mut Vec::new()).is_ok_and(|names| names != *listed);
        if changed {
            return Wait::NewDevices;
        }
        let now = Instant::now();
        if now >= deadline {
            return Wait::DeadlinePassed;
        }
        if now >= quiet_until {
            return Wait::Quiet;
        }
        std::thread::sleep(options.poll_interval.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::thread;

    use super::*;
    use crate::devices::tests::{E1000, FixtureSysfs};
    use crate::modules::RecordingModuleLoader;

    const VIRTIO_PCI_NET: &str = "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00";
    const AHCI: &str = "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01";
    const FLOPPY: &str = "acpi:PNP0700:";

    /// A QEMU guest before coldplug: an e1000, a virtio-net PCI function, an AHCI
    /// controller, a floppy controller and a PCI host bridge, none of them bound.
    fn guest() -> FixtureSysfs {
        let sysfs = FixtureSysfs::new();
        sysfs.add(
            "pci",
            "pci0000:00/0000:00:00.0",
            &["MODALIAS=pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"],
            &pci_ids(),
        );
        sysfs.add("pci", "pci0000:00/0000:00:03.0", &[E1000], &pci_ids());
        sysfs.add(
            "pci",
            "pci0000:00/0000:00:04.0",
            &[&format!("MODALIAS={VIRTIO_PCI_NET}")],
            &pci_ids(),
        );
        sysfs.add(
            "pci",
            "pci0000:00/0000:00:1f.2",
            &[&format!("MODALIAS={AHCI}")],
            &pci_ids(),
        );
        sysfs.add(
            "acpi",
            "LNXSYSTM:00/PNP0700:00",
            &[&format!("MODALIAS={FLOPPY}")],
            &[],
        );
        sysfs
    }

    fn pci_ids() -> [(&'static str, &'static str); 5] {
        [
            ("vendor", "0x8086"),
            ("device", "0x1237"),
            ("subsystem_vendor", "0x1af4"),
            ("subsystem_device", "0x1100"),
            ("class", "0x060000"),
        ]
    }

    /// A loader that knows the modules of [`guest`]'s devices and does what their drivers do
    /// in sysfs: binds the device, and creates the devices the driver finds behind it.
    struct FakeLoader {
        root: PathBuf,
        calls: Vec<String>,
        loaded: BTreeSet<String>,
        /// Delay before the SCSI disk behind the AHCI controller appears, like a real scan.
        scsi_scan_delay: Duration,
        /// Scans still running; joined on drop, before the fixture tree goes away.
        scans: Vec<thread::JoinHandle<()>>,
    }

    impl Drop for FakeLoader {
        fn drop(&mut self) {
            for scan in self.scans.drain(..) {
                scan.join().unwrap();
            }
        }
    }

    impl FakeLoader {
        fn new(sysfs: &FixtureSysfs) -> Self {
            FakeLoader {
                root: sysfs.root().to_owned(),
                calls: Vec::new(),
                loaded: BTreeSet::new(),
                scsi_scan_delay: Duration::ZERO,
                scans: Vec::new(),
            }
        }

        fn sysfs(&self) -> FixtureSysfs {
            FixtureSysfs::at(&self.root)
        }

        /// What loading `module` does to sysfs.
        fn take_effect(&mut self, module: &str) {
            let sysfs = self.sysfs();
            match module {
                "virtio_pci" => {
                    sysfs.bind("pci", "pci0000:00/0000:00:04.0", "virtio-pci");
                    sysfs.add(
                        "virtio",
                        "pci0000:00/0000:00:04.0/virtio0",
                        &["MODALIAS=virtio:d00000001v00001AF4"],
                        &[("vendor", "0x1af4"), ("device", "0x0001")],
                    );
                }
                "virtio_net" => {
                    sysfs.bind("virtio", "pci0000:00/0000:00:04.0/virtio0", "virtio_net")
                }
                "ahci" => {
                    sysfs.bind("pci", "pci0000:00/0000:00:1f.2", "ahci");
                    let root = self.root.clone();
                    let delay = self.scsi_scan_delay;
                    let scan = move || {
                        FixtureSysfs::at(&root).add(
                            "scsi",
                            "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0",
                            &["DEVTYPE=scsi_device", "MODALIAS=scsi:t-0x00"],
                            &[],
                        );
                    };
                    if delay.is_zero() {
                        scan();
                    } else {
                        self.scans.push(thread::spawn(move || {
                            thread::sleep(delay);
                            scan();
                        }));
                    }
                }
                "sd_mod" => sysfs.bind(
                    "scsi",
                    "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0",
                    "sd",
                ),
                _ => {}
            }
        }
    }

    impl DriverLoader for FakeLoader {
        fn load_for_modalias(&mut self, modalias: &str) -> Vec<ModuleStep> {
            self.calls.push(modalias.to_owned());
            let modules: &[&str] = match modalias {
                E1000_MODALIAS => &["e1000"],
                VIRTIO_PCI_NET => &["virtio_pci"],
                "virtio:d00000001v00001AF4" => &["failover", "net_failover", "virtio_net"],
                AHCI => &["libahci", "ahci"],
                "scsi:t-0x00" => &["scsi_mod", "sd_mod"],
                FLOPPY => &["floppy"],
                _ => &[],
            };
            modules
                .iter()
                .map(|&module| {
                    let status = match module {
                        "e1000" => {
                            return ModuleStep {
                                reason: Some(E1000_FAILURE.into()),
                                ..ModuleStep::new(module, StepStatus::Failed)
                            };
                        }
                        "floppy" => StepStatus::Blacklisted,
                        "scsi_mod" => StepStatus::Builtin,
                        _ if !self.loaded.insert(module.to_owned()) => StepStatus::AlreadyLoaded,
                        _ => {
                            self.take_effect(module);
                            StepStatus::Loaded
                        }
                    };
                    ModuleStep::new(module, status)
                })
                .collect()
        }
    }

    const E1000_MODALIAS: &str = "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00";
    const E1000_FAILURE: &str = "cannot load module e1000 from e1000.ko: EINVAL: Invalid argument";

    fn fast() -> ColdplugOptions {
        ColdplugOptions {
            deadline: Duration::from_secs(10),
            quiet_period: Duration::from_millis(50),
            poll_interval: Duration::from_millis(2),
        }
    }

    fn modules_of<'a>(report: &'a ColdplugReport, modalias: &str) -> Vec<(&'a str, StepStatus)> {
        report
            .modaliases
            .iter()
            .find(|load| load.modalias == modalias)
            .unwrap_or_else(|| panic!("{modalias} not handled: {report:#?}"))
            .steps
            .iter()
            .map(|step| (step.module.as_str(), step.status))
            .collect()
    }

    #[test]
    fn loads_drivers_until_the_devices_they_create_have_theirs() {
        let sysfs = guest();
        let mut loader = FakeLoader::new(&sysfs);
        let report = coldplug(sysfs.root(), &mut loader, &fast()).unwrap();

        assert_eq!(report.end, ColdplugEnd::Settled);
        // Pass 1: the PCI and ACPI devices; 2: virtio0 and the disk; 3: nothing new.
        assert_eq!(report.passes, 3, "{report:#?}");
        assert_eq!(
            report.loaded_modules(),
            [
                "virtio_pci",
                "libahci",
                "ahci",
                "sd_mod",
                "failover",
                "net_failover",
                "virtio_net"
            ]
        );
        let passes: Vec<(&str, u32)> = report
            .modaliases
            .iter()
            .map(|load| (load.modalias.as_str(), load.pass))
            .collect();
        assert_eq!(
            passes,
            [
                (FLOPPY, 1),
                ("pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00", 1),
                (E1000_MODALIAS, 1),
                (VIRTIO_PCI_NET, 1),
                (AHCI, 1),
                ("scsi:t-0x00", 2),
                ("virtio:d00000001v00001AF4", 2),
            ]
        );
        assert_eq!(
            modules_of(&report, "scsi:t-0x00"),
            [
                ("scsi_mod", StepStatus::Builtin),
                ("sd_mod", StepStatus::Loaded)
            ]
        );
        assert_eq!(report.devices, 7);
        assert!(report.issues.is_empty(), "{:?}", report.issues);
        // Each modalias is handed to the loader once.
        assert_eq!(loader.calls.len(), 7, "{:?}", loader.calls);
    }

    #[test]
    fn failures_blacklist_and_driverless_devices_are_reported() {
        let sysfs = guest();
        let report = coldplug(sysfs.root(), &mut FakeLoader::new(&sysfs), &fast()).unwrap();
        assert_eq!(
            report.failures(),
            [(E1000_MODALIAS, "e1000", E1000_FAILURE)]
        );
        assert_eq!(report.blacklisted_modules(), ["floppy"]);
        let unbound: Vec<(&str, &str, bool)> = report
            .unbound
            .iter()
            .map(|device| (device.bus.as_str(), device.name.as_str(), device.has_module))
            .collect();
        assert_eq!(
            unbound,
            [
                ("acpi", "PNP0700:00", false),
                ("pci", "0000:00:00.0", false),
                ("pci", "0000:00:03.0", false),
            ]
        );
    }

    #[test]
    fn waits_for_devices_that_appear_after_the_load() {
        let sysfs = guest();
        let mut loader = FakeLoader::new(&sysfs);
        loader.scsi_scan_delay = Duration::from_millis(100);
        let options = ColdplugOptions {
            quiet_period: Duration::from_millis(1000),
            ..fast()
        };
        let report = coldplug(sysfs.root(), &mut loader, &options).unwrap();
        assert_eq!(report.end, ColdplugEnd::Settled);
        assert!(report.loaded_modules().contains(&"sd_mod"), "{report:#?}");
        assert!(report.unbound.iter().all(|device| device.bus != "scsi"));
    }

    #[test]
    fn a_device_later_than_the_quiet_period_is_left_to_hotplug() {
        let sysfs = guest();
        let mut loader = FakeLoader::new(&sysfs);
        loader.scsi_scan_delay = Duration::from_millis(800);
        let report = coldplug(sysfs.root(), &mut loader, &fast()).unwrap();
        assert_eq!(report.end, ColdplugEnd::Settled);
        assert!(!report.loaded_modules().contains(&"sd_mod"));
    }

    #[test]
    fn nothing_to_load_settles_after_one_pass() {
        let sysfs = FixtureSysfs::new();
        sysfs.add(
            "platform",
            "platform/serial8250",
            &["MODALIAS=platform:serial8250"],
            &[],
        );
        sysfs.bind("platform", "platform/serial8250", "serial8250");
        let mut loader = FakeLoader::new(&sysfs);
        let started = Instant::now();
        let report = coldplug(sysfs.root(), &mut loader, &ColdplugOptions::default()).unwrap();
        // Well below the 250 ms quiet period: nothing was loaded, so nothing is waited for.
        assert!(started.elapsed() < Duration::from_millis(250));
        assert_eq!((report.end, report.passes), (ColdplugEnd::Settled, 1));
        assert!(
            report
                .to_string()
                .starts_with("coldplug: settled after 1 pass in ")
        );
        assert_eq!(loader.calls, ["platform:serial8250"]);
        assert!(report.unbound.is_empty());
    }

    /// A loader whose every module creates a device with a modalias never seen before.
    struct EndlessLoader {
        root: PathBuf,
        count: u32,
    }

    impl DriverLoader for EndlessLoader {
        fn load_for_modalias(&mut self, _modalias: &str) -> Vec<ModuleStep> {
            self.count += 1;
            FixtureSysfs::at(&self.root).add(
                "virtio",
                &format!("virtio{}", self.count),
                &[&format!("MODALIAS=virtio:d{:08}v00001AF4", self.count)],
                &[],
            );
            vec![ModuleStep::new(
                &format!("driver{}", self.count),
                StepStatus::Loaded,
            )]
        }
    }

    #[test]
    fn the_deadline_stops_a_run_that_never_settles() {
        let sysfs = guest();
        let mut loader = EndlessLoader {
            root: sysfs.root().to_owned(),
            count: 0,
        };
        let options = ColdplugOptions {
            deadline: Duration::from_millis(200),
            ..fast()
        };
        let report = coldplug(sysfs.root(), &mut loader, &options).unwrap();
        assert_eq!(report.end, ColdplugEnd::DeadlinePassed);
        assert!(report.passes > 2, "{}", report.passes);
        assert!(
            report.elapsed_ms >= 200 && report.elapsed_ms < 1000,
            "{}",
            report.elapsed_ms
        );
        assert!(
            report
                .to_string()
                .starts_with("coldplug: deadline of 200 ms passed after")
        );
    }

    #[test]
    fn a_zero_deadline_loads_nothing() {
        let sysfs = guest();
        let mut loader = FakeLoader::new(&sysfs);
        let options = ColdplugOptions::with_deadline(Duration::ZERO);
        let report = coldplug(sysfs.root(), &mut loader, &options).unwrap();
        assert_eq!(
            (report.end, report.passes),
            (ColdplugEnd::DeadlinePassed, 1)
        );
        assert!(loader.calls.is_empty());
        assert_eq!(report.unbound.len(), 5);
    }

    #[test]
    fn missing_sysfs_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut loader = EndlessLoader {
            root: dir.path().to_owned(),
            count: 0,
        };
        let error = coldplug(dir.path(), &mut loader, &fast()).unwrap_err();
        assert_eq!(error.to_string(), "cannot list the devices");
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert_eq!(
            source,
            format!("cannot list {}", dir.path().join("bus").display())
        );
    }

    /// A loader that takes sysfs away, as if it were unmounted mid-run.
    struct UnmountingLoader {
        root: PathBuf,
    }

    impl DriverLoader for UnmountingLoader {
        fn load_for_modalias(&mut self, _modalias: &str) -> Vec<ModuleStep> {
            let _ = fs::remove_dir_all(self.root.join("bus"));
            vec![ModuleStep::new("virtio_pci", StepStatus::Loaded)]
        }
    }

    #[test]
    fn a_later_unreadable_listing_ends_the_run_with_an_issue() {
        let sysfs = guest();
        let mut loader = UnmountingLoader {
            root: sysfs.root().to_owned(),
        };
        let report = coldplug(sysfs.root(), &mut loader, &fast()).unwrap();
        assert_eq!((report.end, report.passes), (ColdplugEnd::ListingFailed, 2));
        assert_eq!(report.devices, 5);
        assert_eq!(report.issues.len(), 1);
        assert_eq!(report.issues[0].path, sysfs.root().join("bus"));
        assert!(
            report
                .to_string()
                .starts_with("coldplug: device list unreadable after 2 passes")
        );
    }

    #[test]
    fn unreadable_entries_are_reported_once() {
        let sysfs = guest();
        fs::create_dir(sysfs.root().join("bus/broken")).unwrap();
        let report = coldplug(sysfs.root(), &mut FakeLoader::new(&sysfs), &fast()).unwrap();
        assert!(report.passes > 1);
        assert_eq!(report.issues.len(), 1, "{:?}", report.issues);
        assert_eq!(
            report.issues[0].path,
            sysfs.root().join("bus/broken/devices")
        );
    }

    /// A modules directory for [`guest`]'s devices: ahci's file is missing, floppy is
    /// blacklisted by the test, sd_mod is built in.
    fn modules_fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(
            root.join("modules.alias"),
            "# Aliases extracted from modules themselves.\n\
             alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\n\
             alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n\
             alias virtio:d00000001v* virtio_net\n\
             alias acpi*:PNP0700:* floppy\n\
             alias pci:v00008086d00002922sv*sd*bc01sc06i01* ahci\n\
             alias scsi:t-0x00* sd_mod\n",
        )
        .unwrap();
        let dependencies = [
            ("kernel/drivers/net/ethernet/intel/e1000/e1000.ko", ""),
            (
                "kernel/drivers/virtio/virtio_pci.ko",
                "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
            ),
            ("kernel/drivers/virtio/virtio_pci_modern_dev.ko", ""),
            ("kernel/drivers/block/floppy.ko", ""),
            (
                "kernel/drivers/ata/ahci.ko",
                "kernel/drivers/ata/libahci.ko",
            ),
            ("kernel/drivers/ata/libahci.ko", ""),
        ];
        let mut dep = String::new();
        for (file, needs) in dependencies {
            dep.push_str(&format!("{file}: {needs}\n"));
            if file.ends_with("ahci.ko") && !file.ends_with("libahci.ko") {
                continue;
            }
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"\x7fELF fixture module").unwrap();
        }
        fs::write(root.join("modules.dep"), dep).unwrap();
        fs::write(
            root.join("modules.builtin"),
            "kernel/drivers/scsi/sd_mod.ko\n",
        )
        .unwrap();
        fs::write(root.join("modules.softdep"), "# Soft dependencies.\n").unwrap();
        dir
    }

    #[test]
    fn the_module_index_loader_resolves_loads_and_reports() {
        let sysfs = guest();
        let modules = modules_fixture();
        let index = ModuleIndex::load(modules.path()).unwrap();
        let options = ModuleOptions::from_kernel_parameters([
            ("mfv.blacklist", Some("floppy")),
            ("virtio_pci.force_legacy", Some("1")),
        ]);
        let mut kernel = RecordingModuleLoader::new();
        kernel.fail("e1000", nix::errno::Errno::ENODEV);
        let mut loader = ModuleDriverLoader::new(&index, &options, kernel);
        let report = coldplug(sysfs.root(), &mut loader, &fast()).unwrap();

        assert_eq!(report.end, ColdplugEnd::Settled);
        assert_eq!(report.passes, 2);
        assert_eq!(
            loader.loader().inserted_modules(),
            ["virtio_pci_modern_dev", "virtio_pci", "libahci"]
        );
        assert_eq!(loader.loader().inserts()[1].parameters, "force_legacy=1");
        assert_eq!(
            report.loaded_modules(),
            ["virtio_pci_modern_dev", "virtio_pci", "libahci"]
        );
        assert_eq!(report.blacklisted_modules(), ["floppy"]);
        let failures = report.failures();
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert_eq!((failures[0].0, failures[0].1), (E1000_MODALIAS, "e1000"));
        assert!(failures[0].2.contains("ENODEV"), "{}", failures[0].2);
        assert_eq!((failures[1].0, failures[1].1), (AHCI, "ahci"));
        assert!(
            failures[1].2.contains("kernel/drivers/ata/ahci.ko"),
            "{}",
            failures[1].2
        );
        // The host bridge has no module: handled, nothing to load.
        assert_eq!(
            modules_of(
                &report,
                "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"
            ),
            []
        );
        let text = report.to_string();
        assert!(
            text.contains("  blacklisted floppy for acpi:PNP0700:\n"),
            "{text}"
        );
        assert!(
            text.contains("  loaded virtio_pci for pci:v00001AF4d00001000"),
            "{text}"
        );
    }

    #[test]
    fn a_blacklisted_dependency_fails_the_module_that_needs_it() {
        let modules = modules_fixture();
        let index = ModuleIndex::load(modules.path()).unwrap();
        let options = ModuleOptions::from_kernel_parameters([(
            "modprobe.blacklist",
            Some("virtio_pci_modern_dev"),
        )]);
        let mut loader = ModuleDriverLoader::new(&index, &options, RecordingModuleLoader::new());
        assert_eq!(
            loader.load_for_modalias(VIRTIO_PCI_NET),
            [
                ModuleStep::new("virtio_pci_modern_dev", StepStatus::Blacklisted),
                ModuleStep {
                    reason: Some(
                        "module virtio_pci_modern_dev, needed by virtio_pci, is blacklisted".into()
                    ),
                    ..ModuleStep::new("virtio_pci", StepStatus::Failed)
                },
            ]
        );
        assert!(loader.loader().inserts().is_empty());
        // A modalias nothing matches loads nothing.
        assert_eq!(loader.load_for_modalias("platform:pcspkr"), []);
    }

    /// Coldplug over this machine's /sys with a loader that finds no module: one pass, every
    /// modalias handed over once, nothing left unread on the PCI bus.
    #[test]
    fn runs_over_this_machines_sysfs() {
        let listing = crate::list_devices().unwrap();
        struct NoModules<'a>(&'a mut Vec<String>);
        impl DriverLoader for NoModules<'_> {
            fn load_for_modalias(&mut self, modalias: &str) -> Vec<ModuleStep> {
                self.0.push(modalias.to_owned());
                Vec::new()
            }
        }
        let mut calls = Vec::new();
        let report = coldplug("/sys", &mut NoModules(&mut calls), &fast()).unwrap();
        assert_eq!((report.end, report.passes), (ColdplugEnd::Settled, 1));
        let expected: BTreeSet<&str> = listing
            .devices
            .iter()
            .filter_map(|device| device.modalias.as_deref())
            .collect();
        assert_eq!(calls.len(), expected.len());
        assert_eq!(
            calls.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            expected
        );
        assert!(
            report
                .issues
                .iter()
                .all(|issue| !issue.path.starts_with("/sys/bus/pci"))
        );
    }

    #[test]
    fn a_failed_soft_dependency_is_reported_but_not_counted_as_a_failure() {
        let enodev = "cannot load module crct10dif_pclmul from /lib/modules/x/crct10dif-pclmul.ko: ENODEV: No such device";
        let outcome = LoadOutcome {
            module: ModuleName::new("sd_mod"),
            steps: vec![
                crate::modules::LoadStep {
                    module: ModuleName::new("crct10dif_pclmul"),
                    role: StepRole::SoftPre,
                    status: StepStatus::Failed,
                },
                crate::modules::LoadStep {
                    module: ModuleName::new("sd_mod"),
                    role: StepRole::Target,
                    status: StepStatus::Loaded,
                },
            ],
            missing_soft_dependencies: Vec::new(),
            soft_dependency_errors: vec![crate::modules::ModuleError::Load {
                module: ModuleName::new("crct10dif_pclmul"),
                path: "/lib/modules/x/crct10dif-pclmul.ko".into(),
                source: nix::errno::Errno::ENODEV,
            }],
            error: None,
        };
        let steps = module_steps(outcome);
        assert!(steps[0].soft && steps[0].status == StepStatus::Failed);
        assert_eq!(steps[0].reason.as_deref(), Some(enodev));
        assert!(!steps[1].soft);
        let report = ColdplugReport {
            modaliases: vec![ModaliasLoad {
                modalias: "scsi:t-0x00".into(),
                pass: 2,
                devices: Vec::new(),
                steps,
            }],
            unbound: Vec::new(),
            issues: Vec::new(),
            ..sample_report()
        };
        assert!(report.failures().is_empty());
        let text = report.to_string();
        assert!(text.contains(", 0 failed,"), "{text}");
        assert!(
            text.contains(&format!(
                "  soft dependency crct10dif_pclmul not loaded for scsi:t-0x00: {enodev}"
            )),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["modaliases"][0]["steps"][0]["soft"], true);
        assert!(json["modaliases"][0]["steps"][1].get("soft").is_none());
    }

    const AHCI_FAILURE: &str = "cannot read module ahci from /lib/modules/6.1.0-56-amd64/kernel/drivers/ata/ahci.ko: No such file or directory (os error 2)";

    fn sample_report() -> ColdplugReport {
        ColdplugReport {
            end: ColdplugEnd::Settled,
            deadline_ms: 10_000,
            passes: 3,
            elapsed_ms: 412,
            devices: 57,
            modaliases: vec![
                ModaliasLoad {
                    modalias: "virtio:d00000001v00001AF4".into(),
                    pass: 2,
                    devices: vec!["devices/pci0000:00/0000:00:04.0/virtio0".into()],
                    steps: vec![
                        ModuleStep::new("failover", StepStatus::AlreadyLoaded),
                        ModuleStep::new("virtio_net", StepStatus::Loaded),
                    ],
                },
                ModaliasLoad {
                    modalias: AHCI.into(),
                    pass: 1,
                    devices: vec!["devices/pci0000:00/0000:00:1f.2".into()],
                    steps: vec![
                        ModuleStep::new("libahci", StepStatus::Builtin),
                        ModuleStep {
                            reason: Some(AHCI_FAILURE.into()),
                            ..ModuleStep::new("ahci", StepStatus::Failed)
                        },
                    ],
                },
                ModaliasLoad {
                    modalias: FLOPPY.into(),
                    pass: 1,
                    devices: vec!["devices/LNXSYSTM:00/PNP0700:00".into()],
                    steps: vec![ModuleStep::new("floppy", StepStatus::Blacklisted)],
                },
            ],
            unbound: vec![
                UnboundDevice {
                    bus: "acpi".into(),
                    name: "PNP0700:00".into(),
                    path: "devices/LNXSYSTM:00/PNP0700:00".into(),
                    modalias: FLOPPY.into(),
                    has_module: false,
                },
                UnboundDevice {
                    bus: "cpu".into(),
                    name: "cpu0".into(),
                    path: "devices/system/cpu/cpu0".into(),
                    modalias: "cpu:type:x86,ven0000fam0006mod003F:feature:,0000".into(),
                    has_module: false,
                },
                UnboundDevice {
                    bus: "pci".into(),
                    name: "0000:00:1f.2".into(),
                    path: "devices/pci0000:00/0000:00:1f.2".into(),
                    modalias: AHCI.into(),
                    has_module: false,
                },
                UnboundDevice {
                    bus: "virtio".into(),
                    name: "virtio3".into(),
                    path: "devices/pci0000:00/0000:00:07.0/virtio3".into(),
                    modalias: "virtio:d00000005v00001AF4".into(),
                    has_module: true,
                },
            ],
            issues: vec![ProbeIssue {
                path: "/sys/bus/broken/devices".into(),
                message: "cannot list /sys/bus/broken/devices: Permission denied (os error 13)"
                    .into(),
            }],
        }
    }

    #[test]
    fn console_text() {
        assert_eq!(
            sample_report().to_string(),
            "coldplug: settled after 3 passes in 412 ms: 57 devices, 1 modules loaded, 1 failed, 1 blacklisted, 4 without driver
  loaded virtio_net for virtio:d00000001v00001AF4
  FAILED ahci for pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01: cannot read module ahci from /lib/modules/6.1.0-56-amd64/kernel/drivers/ata/ahci.ko: No such file or directory (os error 2)
  blacklisted floppy for acpi:PNP0700:
  no driver: pci 0000:00:1f.2 pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01
  no driver: virtio virtio3 virtio:d00000005v00001AF4 (module loaded)
  no driver: 2 more on acpi, cpu
  issue: cannot list /sys/bus/broken/devices: Permission denied (os error 13)
"
        );
    }

    #[test]
    fn report_serializes_as_stable_json() {
        let mut report = sample_report();
        report.modaliases.truncate(2);
        report.unbound.truncate(1);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "end": "settled",
                "deadline_ms": 10000,
                "passes": 3,
                "elapsed_ms": 412,
                "devices": 57,
                "modaliases": [
                    {
                        "modalias": "virtio:d00000001v00001AF4",
                        "pass": 2,
                        "devices": ["devices/pci0000:00/0000:00:04.0/virtio0"],
                        "steps": [
                            {"module": "failover", "status": "already_loaded", "reason": null},
                            {"module": "virtio_net", "status": "loaded", "reason": null}
                        ]
                    },
                    {
                        "modalias": AHCI,
                        "pass": 1,
                        "devices": ["devices/pci0000:00/0000:00:1f.2"],
                        "steps": [
                            {"module": "libahci", "status": "builtin", "reason": null},
                            {"module": "ahci", "status": "failed", "reason": AHCI_FAILURE}
                        ]
                    }
                ],
                "unbound": [{
                    "bus": "acpi",
                    "name": "PNP0700:00",
                    "path": "devices/LNXSYSTM:00/PNP0700:00",
                    "modalias": "acpi:PNP0700:",
                    "has_module": false
                }],
                "issues": [{
                    "path": "/sys/bus/broken/devices",
                    "message": "cannot list /sys/bus/broken/devices: Permission denied (os error 13)"
                }]
            })
        );
    }
}
