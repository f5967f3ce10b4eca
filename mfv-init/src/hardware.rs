//! Drivers and hardware, through mfv-probe: the `coldplug` phase on the real system (every
//! driver loaded until the devices settle, then the inventory: [`coldplug`], whose console
//! lines are [`coldplug_lines`]), and hotplug afterwards (a thread that loads the drivers of
//! devices that come later and logs disks and NICs added or removed: [`start_hotplug`],
//! [`hotplug_loop`], [`hotplug_lines`]). [`ProbeSettings`] is what both need to know.
//!
//! Kernel command line words that matter here (mfv-probe reads the first two the way modprobe
//! does):
//! - `module.param=value`: an option passed when `module` is loaded;
//! - `modprobe.blacklist=a,b` and `mfv.blacklist=a,b`: modules never loaded;
//! - `mfv.coldplug=off`: mfv-init loads no driver at all, neither at boot nor on hotplug
//!   (`cargo xtask bench probe` uses it to time the shell's way of loading drivers).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mfv_host::hardware::{Drivers, ProbeSettings};
use mfv_probe::modules::StepStatus;
use mfv_probe::{
    BlockDevice, ColdplugOptions, ColdplugReport, DriverLoader, HandledUevent, HotplugEvent,
    Inventory, SystemRoots, Uevent, UeventError, UeventListener,
};

use crate::clock::{BootClock, Clock};
use crate::console::Console;

/// The key that switches driver loading off.
pub const COLDPLUG_KEY: &str = "mfv.coldplug";

/// How long coldplug may take before the boot goes on without the slowest devices.
const COLDPLUG_DEADLINE: Duration = Duration::from_secs(20);

/// The kernel's uevent socket, opened before coldplug so that no device added after coldplug's
/// last look is missed, and the kernel's uevent counter when coldplug ended: queued uevents up
/// to it announced devices coldplug handled already.
#[derive(Debug)]
pub struct EarlyUevents {
    listener: UeventListener,
    coldplug_seqnum: Option<u64>,
}

/// What coldplug leaves for the rest of the boot: the console lines ([`coldplug_lines`]), the
/// uevent socket for hotplug, and the module index it read, which hotplug, the power button and
/// the preparation for VMs use instead of reading it again (a tenth of a second each under
/// emulation).
#[derive(Debug)]
pub struct Coldplugged {
    /// The console lines.
    pub lines: Vec<String>,
    /// The uevent socket, if it could be opened.
    pub uevents: Option<EarlyUevents>,
    /// The module index and the command line's module options.
    pub drivers: Arc<Drivers>,
}

/// The coldplug phase on the real system: opens the uevent socket (kept for hotplug), loads
/// every driver through [`Drivers`] until settled, then takes the inventory.
pub fn coldplug(probe: &ProbeSettings) -> anyhow::Result<Coldplugged> {
    // Without the socket now, hotplug tries again when it starts and reports why it failed.
    let listener = UeventListener::open().ok();
    let drivers = Drivers::open(probe)?;
    let report = mfv_probe::coldplug(
        &probe.roots.sysfs,
        &mut drivers.boot_loader(),
        &ColdplugOptions::with_deadline(COLDPLUG_DEADLINE),
    )?;
    let coldplug_seqnum = uevent_seqnum(&probe.roots.sysfs);
    let inventory = mfv_probe::inventory_at(&probe.roots);
    let uevents = listener.map(|listener| EarlyUevents {
        listener,
        coldplug_seqnum,
    });
    Ok(Coldplugged {
        lines: coldplug_lines(&report, &inventory),
        uevents,
        drivers: Arc::new(drivers),
    })
}

/// The kernel's uevent counter (`<sysfs>/kernel/uevent_seqnum`), if readable.
fn uevent_seqnum(sysfs_root: &Path) -> Option<u64> {
    std::fs::read_to_string(sysfs_root.join("kernel/uevent_seqnum"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The console lines after coldplug: the report (its first line `coldplug: settled after
/// ...`, then one indented line per module loaded, failure, and device left without a
/// driver), then one `nic: <summary>` line per network interface, one `disk: <summary>` line
/// per block device, and `inventory: issue: ...` per problem reading them.
pub fn coldplug_lines(report: &ColdplugReport, inventory: &Inventory) -> Vec<String> {
    let mut lines: Vec<String> = report.to_string().lines().map(str::to_owned).collect();
    lines.extend(
        inventory
            .nics
            .iter()
            .map(|nic| format!("nic: {}", nic.summary())),
    );
    lines.extend(
        inventory
            .block_devices
            .iter()
            .map(|disk| format!("disk: {}", disk.summary())),
    );
    lines.extend(
        inventory
            .all_issues()
            .map(|issue| format!("inventory: issue: {issue}")),
    );
    lines
}

/// Takes over the uevent socket coldplug opened (or opens one) and `drivers`, then handles
/// uevents on a thread of its own for the life of the system ([`hotplug_loop`]), logging on
/// the console.
pub fn start_hotplug(
    probe: &ProbeSettings,
    early: Option<EarlyUevents>,
    drivers: Arc<Drivers>,
) -> anyhow::Result<()> {
    let (mut listener, coldplug_seqnum) = match early {
        Some(early) => (early.listener, early.coldplug_seqnum),
        None => (UeventListener::open()?, None),
    };
    let roots = probe.roots.clone();
    std::thread::Builder::new()
        .name("hotplug".to_owned())
        .spawn(move || {
            let mut console = Console::new(std::io::stdout());
            let describe = |name: &str| describe_disk(&roots, name);
            hotplug_loop(
                || listener.next_uevent(None),
                coldplug_seqnum,
                &mut drivers.loader(),
                &describe,
                &mut console,
                &BootClock,
            );
        })
        .context("cannot start the hotplug thread")?;
    Ok(())
}

/// Handles uevents from `next` until it fails: loads the driver of each added device through
/// `drivers` and logs `hotplug: ` lines ([`hotplug_lines`]). Uevents numbered up to
/// `coldplug_seqnum` were queued while coldplug ran: their drivers are loaded all the same
/// (a module loaded then is logged), but their disks and NICs are in coldplug's inventory
/// already and are not logged again.
pub fn hotplug_loop<W: Write>(
    mut next: impl FnMut() -> Result<Option<Uevent>, UeventError>,
    coldplug_seqnum: Option<u64>,
    drivers: &mut dyn DriverLoader,
    describe: &dyn Fn(&str) -> Option<String>,
    console: &mut Console<W>,
    clock: &dyn Clock,
) {
    loop {
        match next() {
            Ok(Some(uevent)) => {
                let mut handled = mfv_probe::handle_uevent(&uevent, drivers);
                let seen_by_coldplug = uevent
                    .seqnum
                    .zip(coldplug_seqnum)
                    .is_some_and(|(seqnum, last)| seqnum <= last);
                if seen_by_coldplug {
                    handled.event = None;
                }
                for line in hotplug_lines(&handled, describe) {
                    console.line(clock.uptime(), line);
                }
            }
            Ok(None) => {}
            Err(error) => {
                let error = anyhow::Error::new(error);
                console.line(clock.uptime(), format_args!("hotplug: stopped: {error:#}"));
                return;
            }
        }
    }
}

/// The console lines for one handled uevent: each module loaded (`hotplug: loaded usb_storage
/// for usb:v...`) or failed (`hotplug: FAILED x for ...: reason`), then the event for disks,
/// partitions and NICs (`hotplug: disk added: sdb (<disk summary>)`, `hotplug: nic removed:
/// eth1`). Other devices are not logged unless a module was loaded for them.
pub fn hotplug_lines(
    handled: &HandledUevent,
    describe: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let modalias = handled.modalias.as_deref().unwrap_or("-");
    let mut lines: Vec<String> = handled
        .steps
        .iter()
        .filter_map(|step| {
            let module = &step.module;
            let reason = step.reason.as_deref().unwrap_or("no reason given");
            match step.status {
                StepStatus::Loaded => Some(format!("hotplug: loaded {module} for {modalias}")),
                StepStatus::Failed if step.soft => Some(format!(
                    "hotplug: soft dependency {module} not loaded for {modalias}: {reason}"
                )),
                StepStatus::Failed => {
                    Some(format!("hotplug: FAILED {module} for {modalias}: {reason}"))
                }
                StepStatus::Blacklisted => {
                    Some(format!("hotplug: blacklisted {module} for {modalias}"))
                }
                StepStatus::AlreadyLoaded | StepStatus::Builtin => None,
            }
        })
        .collect();
    match &handled.event {
        Some(event @ HotplugEvent::DiskAdded { name }) => match describe(name) {
            Some(summary) => lines.push(format!("hotplug: {event} ({summary})")),
            None => lines.push(format!("hotplug: {event}")),
        },
        Some(
            event @ (HotplugEvent::DiskRemoved { .. }
            | HotplugEvent::PartitionAdded { .. }
            | HotplugEvent::PartitionRemoved { .. }
            | HotplugEvent::NicAdded { .. }
            | HotplugEvent::NicRemoved { .. }),
        ) => lines.push(format!("hotplug: {event}")),
        Some(HotplugEvent::DeviceAdded { .. } | HotplugEvent::DeviceRemoved { .. }) | None => {}
    }
    lines
}

/// The inventory summary of block device `name`, if it can be read.
fn describe_disk(roots: &SystemRoots, name: &str) -> Option<String> {
    mfv_probe::list_block_devices_at(&roots.sysfs, &roots.dev)
        .ok()?
        .into_iter()
        .find(|disk: &BlockDevice| disk.name == name)
        .map(|disk| disk.summary())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use mfv_config::cmdline::KernelCmdline;
    use mfv_probe::modules::ModuleName;
    use mfv_probe::{ColdplugEnd, ModaliasLoad, ModuleStep};

    use super::*;

    /// A loader that records the modaliases and loads `e1000` (with `mii` first) for any.
    #[derive(Default)]
    struct RecordingDrivers {
        modaliases: Vec<String>,
    }

    impl DriverLoader for RecordingDrivers {
        fn load_for_modalias(&mut self, modalias: &str) -> Vec<ModuleStep> {
            self.modaliases.push(modalias.to_owned());
            vec![
                ModuleStep::new("mii", StepStatus::AlreadyLoaded),
                ModuleStep::new("e1000", StepStatus::Loaded),
            ]
        }
    }

    /// A kernel uevent message: header, then `KEY=VALUE` fields.
    fn message(header: &str, fields: &[&str]) -> Vec<u8> {
        let mut bytes = header.as_bytes().to_vec();
        for field in fields {
            bytes.push(0);
            bytes.extend_from_slice(field.as_bytes());
        }
        bytes
    }

    fn handled(header: &str, fields: &[&str], drivers: &mut dyn DriverLoader) -> HandledUevent {
        let uevent = mfv_probe::parse_uevent(&message(header, fields)).unwrap();
        mfv_probe::handle_uevent(&uevent, drivers)
    }

    fn describe(name: &str) -> Option<String> {
        (name == "sdb").then(|| "sdb size=8.0MiB kind=disk fs=vfat label=HOTSTICK".to_owned())
    }

    #[test]
    fn hotplug_lines_for_disks_nics_and_drivers() {
        let mut drivers = RecordingDrivers::default();
        let disk = [
            "ACTION=add",
            "DEVPATH=/devices/pci0000:00/usb2/2-1/host0/block/sdb",
            "SUBSYSTEM=block",
            "DEVTYPE=disk",
            "DEVNAME=sdb",
        ];
        let cases: [(&str, &[&str], &[&str]); 6] = [
            (
                "add@/devices/x/block/sdb",
                &disk,
                &["hotplug: disk added: sdb (sdb size=8.0MiB kind=disk fs=vfat label=HOTSTICK)"],
            ),
            (
                "add@/devices/x/block/sdc",
                &[
                    "ACTION=add",
                    "SUBSYSTEM=block",
                    "DEVTYPE=disk",
                    "DEVNAME=sdc",
                ],
                &["hotplug: disk added: sdc"],
            ),
            (
                "remove@/devices/x/block/sdb",
                &[
                    "ACTION=remove",
                    "SUBSYSTEM=block",
                    "DEVTYPE=disk",
                    "DEVNAME=sdb",
                ],
                &["hotplug: disk removed: sdb"],
            ),
            (
                "add@/devices/pci0000:00/0000:00:03.0",
                &[
                    "ACTION=add",
                    "SUBSYSTEM=pci",
                    "MODALIAS=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
                ],
                &[
                    "hotplug: loaded e1000 for pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
                ],
            ),
            (
                "add@/devices/pci0000:00/0000:00:03.0/net/eth1",
                &["ACTION=add", "SUBSYSTEM=net", "INTERFACE=eth1"],
                &["hotplug: nic added: eth1"],
            ),
            (
                "change@/devices/x/block/sdb",
                &[
                    "ACTION=change",
                    "SUBSYSTEM=block",
                    "DEVTYPE=disk",
                    "DEVNAME=sdb",
                ],
                &[],
            ),
        ];
        for (header, fields, expected) in cases {
            let handled = handled(header, fields, &mut drivers);
            assert_eq!(hotplug_lines(&handled, &describe), expected, "{header}");
        }
        assert_eq!(
            drivers.modaliases,
            ["pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00"]
        );
    }

    #[test]
    fn hotplug_lines_show_failed_and_blacklisted_modules() {
        let handled = HandledUevent {
            event: None,
            modalias: Some("usb:v46F4p0001".to_owned()),
            steps: vec![
                ModuleStep::new("usb_storage", StepStatus::Blacklisted),
                ModuleStep {
                    module: ModuleName::new("uas"),
                    status: StepStatus::Failed,
                    reason: Some("finit_module uas.ko: ENOEXEC".to_owned()),
                    soft: false,
                },
                ModuleStep::new("scsi_mod", StepStatus::Builtin),
            ],
        };
        assert_eq!(
            hotplug_lines(&handled, &describe),
            [
                "hotplug: blacklisted usb_storage for usb:v46F4p0001",
                "hotplug: FAILED uas for usb:v46F4p0001: finit_module uas.ko: ENOEXEC",
            ]
        );
    }

    #[test]
    fn the_hotplug_loop_logs_new_events_and_stops_on_an_error() {
        let disk = |name: &str, seqnum: u32| {
            message(
                &format!("add@/devices/x/block/{name}"),
                &[
                    "ACTION=add",
                    "SUBSYSTEM=block",
                    "DEVTYPE=disk",
                    &format!("DEVNAME={name}"),
                    &format!("SEQNUM={seqnum}"),
                ],
            )
        };
        let usb = |modalias: &str, seqnum: u32| {
            message(
                "add@/devices/x/usb2/2-1",
                &[
                    "ACTION=add",
                    "SUBSYSTEM=usb",
                    &format!("MODALIAS={modalias}"),
                    &format!("SEQNUM={seqnum}"),
                ],
            )
        };
        // Queued while coldplug ran (up to 42): drivers still loaded, disks not logged again.
        let uevents = [
            disk("sda", 41),
            usb("usb:v0627p0001", 42),
            disk("sdb", 43),
            usb("usb:v46F4p0001", 44),
        ];
        let uevent = |index: usize| Ok(Some(mfv_probe::parse_uevent(&uevents[index]).unwrap()));
        let mut queue: Vec<Result<Option<Uevent>, UeventError>> = vec![
            uevent(0),
            uevent(1),
            uevent(2),
            Ok(None),
            uevent(3),
            Err(UeventError::Receive(nix::errno::Errno::EBADF)),
            Ok(None),
        ];
        queue.reverse();
        let mut drivers = RecordingDrivers::default();
        let mut console = Console::new(Vec::new());
        let clock = crate::fake::FakeClock::new(Duration::from_secs(5), Duration::from_millis(1));
        hotplug_loop(
            || queue.pop().unwrap(),
            Some(42),
            &mut drivers,
            &describe,
            &mut console,
            &clock,
        );
        assert_eq!(
            String::from_utf8(console.output().clone()).unwrap(),
            "[    5.000000] mfv-init: hotplug: loaded e1000 for usb:v0627p0001\n\
             [    5.001000] mfv-init: hotplug: disk added: sdb (sdb size=8.0MiB kind=disk \
             fs=vfat label=HOTSTICK)\n\
             [    5.002000] mfv-init: hotplug: loaded e1000 for usb:v46F4p0001\n\
             [    5.003000] mfv-init: hotplug: stopped: cannot receive from the kernel uevent \
             socket: EBADF: Bad file number\n"
        );
        assert_eq!(queue.len(), 1, "the loop went on after the error");
        assert_eq!(drivers.modaliases, ["usb:v0627p0001", "usb:v46F4p0001"]);
    }

    #[test]
    fn coldplug_lines_hold_the_report_then_the_inventory() {
        let report = ColdplugReport {
            end: ColdplugEnd::Settled,
            deadline_ms: 20_000,
            passes: 2,
            elapsed_ms: 41,
            devices: 9,
            modaliases: vec![ModaliasLoad {
                modalias: "pci:v00008086d0000100E".to_owned(),
                pass: 1,
                devices: vec![PathBuf::from("devices/pci0000:00/0000:00:02.0")],
                steps: vec![ModuleStep::new("e1000", StepStatus::Loaded)],
            }],
            unbound: Vec::new(),
            issues: Vec::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let roots = SystemRoots {
            sysfs: dir.path().join("sys"),
            proc: dir.path().join("proc"),
            dev: dir.path().join("dev"),
        };
        let inventory = mfv_probe::inventory_at(&roots);
        let lines = coldplug_lines(&report, &inventory);
        assert_eq!(
            lines[..2],
            [
                "coldplug: settled after 2 passes in 41 ms: 9 devices, 1 modules loaded, 0 failed, \
                 0 blacklisted, 0 without driver",
                "  loaded e1000 for pci:v00008086d0000100E",
            ]
        );
        assert!(lines.len() > 2);
        for line in &lines[2..] {
            assert!(line.starts_with("inventory: issue: "), "{line}");
        }
        assert!(
            lines
                .iter()
                .any(|line| line.contains(&dir.path().join("sys").display().to_string())),
            "{lines:?}"
        );
    }

    #[test]
    fn coldplug_and_hotplug_name_a_missing_module_index() {
        let dir = tempfile::tempdir().unwrap();
        let probe = ProbeSettings::from_cmdline(
            &KernelCmdline::parse(""),
            SystemRoots::default(),
            dir.path(),
        );
        assert_eq!(
            coldplug(&probe).unwrap_err().to_string(),
            format!("cannot read the module index in {}", dir.path().display())
        );
        // Hotplug, the power button and the preparation for VMs read it when coldplug did not.
        assert_eq!(
            Drivers::shared_or_open(&probe, None)
                .unwrap_err()
                .to_string(),
            format!("cannot read the module index in {}", dir.path().display())
        );
    }
}
