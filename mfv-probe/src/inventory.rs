//! The whole hardware inventory (NICs, block devices, USB devices, CPU, memory), its table
//! rendering and the one-line console summaries.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use serde::Serialize;

use crate::block::{BlockDevice, list_block_devices_at};
use crate::cpu::{Cpu, read_cpu_at};
use crate::memory::{Memory, read_memory_at};
use crate::usb::{UsbDevice, list_usb_devices_at};
use crate::{DEFAULT_SYSFS_ROOT, Nic, ProbeError, ProbeIssue, list_nics_at};

/// Where procfs is mounted on an ordinary Linux system.
pub const DEFAULT_PROC_ROOT: &str = "/proc";

/// Where device nodes live on an ordinary Linux system.
pub const DEFAULT_DEV_ROOT: &str = "/dev";

/// The three trees the inventory reads. [`Default`] gives `/sys`, `/proc` and `/dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemRoots {
    /// The sysfs root (`/sys`).
    pub sysfs: PathBuf,
    /// The procfs root (`/proc`): `cpuinfo`, `meminfo`.
    pub proc: PathBuf,
    /// The device node directory (`/dev`): block device nodes probed by libblkid, `kvm`.
    pub dev: PathBuf,
}

impl Default for SystemRoots {
    fn default() -> Self {
        SystemRoots {
            sysfs: PathBuf::from(DEFAULT_SYSFS_ROOT),
            proc: PathBuf::from(DEFAULT_PROC_ROOT),
            dev: PathBuf::from(DEFAULT_DEV_ROOT),
        }
    }
}

/// Everything the host knows about its hardware. Serializes to JSON with these snake_case
/// field names, each list sorted as its lister documents:
///
/// ```text
/// {"nics": [Nic...], "block_devices": [BlockDevice...], "usb_devices": [UsbDevice...],
///  "cpu": Cpu, "memory": Memory, "issues": [{"path": ..., "message": ...}...]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    /// Network interfaces, virtual ones included ([`list_nics_at`]).
    pub nics: Vec<Nic>,
    /// Whole block devices with their partitions ([`list_block_devices_at`]).
    pub block_devices: Vec<BlockDevice>,
    /// USB devices with their interfaces ([`list_usb_devices_at`]).
    pub usb_devices: Vec<UsbDevice>,
    /// The processors and KVM ([`read_cpu_at`]).
    pub cpu: Cpu,
    /// Memory ([`read_memory_at`]).
    pub memory: Memory,
    /// Lists that could not be read at all (their field is then empty). Problems with a
    /// single device are in that device's `issues`; [`Inventory::all_issues`] yields both.
    pub issues: Vec<ProbeIssue>,
}

/// Takes the inventory of this machine from `/sys`, `/proc` and `/dev`.
pub fn inventory() -> Inventory {
    inventory_at(&SystemRoots::default())
}

/// Takes the inventory from the given roots. Never fails: whatever cannot be read becomes a
/// [`ProbeIssue`] and the rest is still filled in.
pub fn inventory_at(roots: &SystemRoots) -> Inventory {
    let mut issues = Vec::new();
    let nics = listed(&mut issues, list_nics_at(&roots.sysfs));
    let block_devices = listed(&mut issues, list_block_devices_at(&roots.sysfs, &roots.dev));
    let usb_devices = listed(&mut issues, list_usb_devices_at(&roots.sysfs));
    Inventory {
        nics,
        block_devices,
        usb_devices,
        cpu: read_cpu_at(&roots.proc, &roots.dev),
        memory: read_memory_at(&roots.proc),
        issues,
    }
}

/// The listed items, or none after recording why the list could not be read.
fn listed<T>(issues: &mut Vec<ProbeIssue>, result: Result<Vec<T>, ProbeError>) -> Vec<T> {
    result.unwrap_or_else(|error| {
        issues.push(ProbeIssue::from_error(&error));
        Vec::new()
    })
}

impl Inventory {
    /// Every issue: the inventory's own, then each NIC's, block device's, USB device's, the
    /// CPU's and memory's.
    pub fn all_issues(&self) -> impl Iterator<Item = &ProbeIssue> {
        self.issues
            .iter()
            .chain(self.nics.iter().flat_map(|nic| &nic.issues))
            .chain(self.block_devices.iter().flat_map(|device| &device.issues))
            .chain(self.usb_devices.iter().flat_map(|device| &device.issues))
            .chain(&self.cpu.issues)
            .chain(&self.memory.issues)
    }

    /// The inventory as text: sections `NICs`, `Disks` (partitions indented under their
    /// disk; FSTYPE shows a disk's partition table type when it holds no file system), `USB`,
    /// `CPU`, `Memory`, and `Issues` when there are any, each table with aligned columns and
    /// `-` for unknown values; `(none)` for an empty section. The same text as
    /// [`fmt::Display`].
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        out.push_str("NICs\n");
        out.push_str(&table(
            &[
                "NAME", "MAC", "DRIVER", "BUS", "CARRIER", "STATE", "MBIT/S", "KIND",
            ],
            self.nics.iter().map(|nic| {
                vec![
                    nic.name.clone(),
                    dash(nic.mac.as_deref()),
                    dash(nic.driver.as_deref()),
                    dash(nic.bus.as_deref()),
                    yes_no(nic.carrier).to_owned(),
                    nic.operstate
                        .map_or("-".to_owned(), |state| state.to_string()),
                    nic.speed_mbps
                        .map_or("-".to_owned(), |speed| speed.to_string()),
                    nic_kind(nic).to_owned(),
                ]
            }),
        ));

        out.push_str("\nDisks\n");
        let disk_rows = self.block_devices.iter().flat_map(|device| {
            let flags = disk_flags(device);
            let fs_type = device
                .fs_type
                .as_deref()
                .or(device.partition_table.as_deref());
            let disk_row = vec![
                device.name.clone(),
                human_size(device.size_bytes),
                device.kind.to_string(),
                dash(fs_type),
                dash(device.label.as_deref()),
                dash(device.uuid.as_deref()),
                dash(device.model.as_deref()),
                dash(device.serial.as_deref()),
                flags,
            ];
            std::iter::once(disk_row).chain(device.partitions.iter().map(|partition| {
                vec![
                    format!("  {}", partition.name),
                    human_size(partition.size_bytes),
                    "part".to_owned(),
                    dash(partition.fs_type.as_deref()),
                    dash(partition.label.as_deref()),
                    dash(partition.uuid.as_deref()),
                    "-".to_owned(),
                    "-".to_owned(),
                    if partition.read_only {
                        "read-only"
                    } else {
                        "-"
                    }
                    .to_owned(),
                ]
            }))
        });
        out.push_str(&table(
            &[
                "NAME", "SIZE", "KIND", "FSTYPE", "LABEL", "UUID", "MODEL", "SERIAL", "FLAGS",
            ],
            disk_rows,
        ));

        out.push_str("\nUSB\n");
        out.push_str(&table(
            &[
                "NAME", "BUS", "DEV", "ID", "MBIT/S", "CLASS", "PRODUCT", "DRIVERS",
            ],
            self.usb_devices.iter().map(|device| {
                let product = match (&device.manufacturer, &device.product) {
                    (Some(manufacturer), Some(product)) => format!("{manufacturer} {product}"),
                    (None, Some(product)) => product.clone(),
                    (Some(manufacturer), None) => manufacturer.clone(),
                    (None, None) => "-".to_owned(),
                };
                let drivers: Vec<&str> = device
                    .interfaces
                    .iter()
                    .map(|interface| interface.driver.as_deref().unwrap_or("-"))
                    .collect();
                vec![
                    device.name.clone(),
                    device
                        .bus_number
                        .map_or("-".to_owned(), |bus| format!("{bus:03}")),
                    device
                        .device_number
                        .map_or("-".to_owned(), |dev| format!("{dev:03}")),
                    device.ids(),
                    dash(device.speed_mbps.as_deref()),
                    dash(device.class.as_deref()),
                    product,
                    if drivers.is_empty() {
                        "-".to_owned()
                    } else {
                        drivers.join(",")
                    },
                ]
            }),
        ));

        let cpu = &self.cpu;
        let count = |value: Option<u32>| value.map_or("-".to_owned(), |value| value.to_string());
        let kvm = if cpu.kvm.usable {
            "usable".to_owned()
        } else {
            format!("not usable ({})", cpu.kvm.reason.as_deref().unwrap_or("-"))
        };
        out.push_str("\nCPU\n");
        out.push_str(&table(
            &["KEY", "VALUE"],
            [
                ("model", dash(cpu.model_name.as_deref())),
                ("vendor", dash(cpu.vendor.as_deref())),
                ("logical CPUs", cpu.logical_cpus.to_string()),
                ("cores", count(cpu.cores)),
                ("sockets", count(cpu.sockets)),
                (
                    "virtualization",
                    cpu.virtualization
                        .map_or("none".to_owned(), |kind| kind.as_str().to_owned()),
                ),
                ("kvm", kvm),
            ]
            .into_iter()
            .map(|(key, value)| vec![key.to_owned(), value]),
        ));

        let size = |bytes: Option<u64>| bytes.map_or("-".to_owned(), human_size);
        out.push_str("\nMemory\n");
        out.push_str(&table(
            &["KEY", "VALUE"],
            [
                ("total", size(self.memory.total_bytes)),
                ("available", size(self.memory.available_bytes)),
            ]
            .into_iter()
            .map(|(key, value)| vec![key.to_owned(), value]),
        ));

        let issues: Vec<&ProbeIssue> = self.all_issues().collect();
        if !issues.is_empty() {
            let _ = writeln!(out, "\nIssues ({})", issues.len());
            for issue in issues {
                let _ = writeln!(out, "{issue}");
            }
        }
        out
    }
}

impl fmt::Display for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_table())
    }
}

impl Nic {
    /// One line for the console, every key always present, `-` when unknown:
    ///
    /// `eth0 mac=52:54:00:12:34:56 driver=e1000 bus=pci carrier=yes speed=1000Mbit/s kind=physical`
    pub fn summary(&self) -> String {
        format!(
            "{} mac={} driver={} bus={} carrier={} speed={} kind={}",
            self.name,
            summary_value(self.mac.as_deref()),
            summary_value(self.driver.as_deref()),
            summary_value(self.bus.as_deref()),
            yes_no(self.carrier),
            self.speed_mbps
                .map_or("-".to_owned(), |speed| format!("{speed}Mbit/s")),
            nic_kind(self),
        )
    }
}

fn nic_kind(nic: &Nic) -> &'static str {
    if nic.is_virtual {
        "virtual"
    } else {
        "physical"
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

/// A value for a `key=value` summary: `-` when unknown, quoted like a Rust string literal when
/// it is empty or holds white space, `=`, `;` or `"`, as is otherwise.
pub(crate) fn summary_value(value: Option<&str>) -> String {
    match value {
        None => "-".to_owned(),
        Some(text)
            if text.is_empty()
                || text.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '=' | ';' | '"')
                }) =>
        {
            format!("{text:?}")
        }
        Some(text) => text.to_owned(),
    }
}

/// The flags column of a disk in the table: `removable,no-medium,read-only,...`, or `-`.
fn disk_flags(device: &BlockDevice) -> String {
    let flags: Vec<&str> = [
        (device.removable, "removable"),
        (device.has_no_medium(), "no-medium"),
        (device.read_only, "read-only"),
        (device.rotational, "rotational"),
        (device.is_virtual, "virtual"),
    ]
    .into_iter()
    .filter_map(|(set, flag)| set.then_some(flag))
    .collect();
    if flags.is_empty() {
        "-".to_owned()
    } else {
        flags.join(",")
    }
}

/// A size in binary units with one decimal (`512B`, `1.4MiB`, `20.0GiB`).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// Renders rows under headers, each column as wide as its widest cell, two spaces apart, no
/// trailing spaces; `(none)` when there are no rows.
fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    if rows.is_empty() {
        return "(none)\n".to_owned();
    }
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(&rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::block::tests::{Fixture, mkfs_image, write};
    use crate::{BlockKind, OperState};

    /// A complete fixture machine: one e1000 NIC, a virtio disk with a FAT partition labelled
    /// `mfv-config`, a root hub with a USB stick, a 2-CPU cpuinfo with vmx, meminfo, no kvm.
    fn fixture_machine() -> (Fixture, SystemRoots) {
        let fixture = Fixture::new();
        let sysfs = fixture.sysfs();

        let nic_rel = "devices/pci0000:00/0000:00:03.0/net/eth0";
        for (attribute, value) in [
            ("address", "52:54:00:12:34:56"),
            ("operstate", "up"),
            ("carrier", "1"),
            ("speed", "1000"),
        ] {
            write(&sysfs.join(nic_rel).join(attribute), &format!("{value}\n"));
        }
        fs::create_dir_all(sysfs.join("class/net")).unwrap();
        symlink(format!("../../{nic_rel}"), sysfs.join("class/net/eth0")).unwrap();
        symlink("../..", sysfs.join(nic_rel).join("device")).unwrap();
        fs::create_dir_all(sysfs.join("bus/pci/drivers/e1000")).unwrap();
        let pci_device = sysfs.join("devices/pci0000:00/0000:00:03.0");
        symlink("../../../bus/pci/drivers/e1000", pci_device.join("driver")).unwrap();
        symlink("../../../bus/pci", pci_device.join("subsystem")).unwrap();

        let disk = fixture.disk("vda", Some("pci0000:00/0000:00:04.0/virtio1"), 65536);
        write(&disk.join("serial"), "disk-1\n");
        fixture.partition(&disk, "vda1", 1, 2048, 8192);
        fixture.blank_node("vda", 32 << 20);
        fixture.formatted_node(
            "vda1",
            4 << 20,
            "mkfs.vfat",
            &["-n", "mfv-config", "-i", "0000BEEF"],
        );

        let usb = sysfs.join("devices/pci0000:00/0000:00:05.0/usb1");
        for (attribute, value) in [
            ("busnum", "1"),
            ("devnum", "1"),
            ("idVendor", "1d6b"),
            ("idProduct", "0002"),
            ("product", "EHCI Host Controller"),
            ("speed", "480"),
            ("bDeviceClass", "09"),
        ] {
            write(&usb.join(attribute), &format!("{value}\n"));
        }
        write(&usb.join("1-0:1.0/bInterfaceClass"), "09\n");
        fs::create_dir_all(sysfs.join("bus/usb/devices")).unwrap();
        symlink(
            "../../../devices/pci0000:00/0000:00:05.0/usb1",
            sysfs.join("bus/usb/devices/usb1"),
        )
        .unwrap();

        let proc = fixture.root().join("proc");
        write(
            &proc.join("cpuinfo"),
            "processor : 0\nmodel name : Test CPU\nphysical id : 0\ncore id : 0\nflags : vmx\n\n\
             processor : 1\nmodel name : Test CPU\nphysical id : 0\ncore id : 1\nflags : vmx\n",
        );
        write(
            &proc.join("meminfo"),
            "MemTotal: 2097152 kB\nMemAvailable: 1048576 kB\n",
        );
        let roots = SystemRoots {
            sysfs,
            proc,
            dev: fixture.dev(),
        };
        (fixture, roots)
    }

    #[test]
    fn default_roots_are_the_system_paths() {
        let roots = SystemRoots::default();
        assert_eq!(
            (
                roots.sysfs.as_path(),
                roots.proc.as_path(),
                roots.dev.as_path()
            ),
            (Path::new("/sys"), Path::new("/proc"), Path::new("/dev"))
        );
    }

    #[test]
    fn inventory_of_a_fixture_machine() {
        let (_fixture, roots) = fixture_machine();
        let inventory = inventory_at(&roots);
        assert_eq!(inventory.nics.len(), 1);
        assert_eq!(inventory.nics[0].operstate, Some(OperState::Up));
        assert_eq!(inventory.block_devices.len(), 1);
        assert_eq!(inventory.block_devices[0].kind, BlockKind::Disk);
        assert_eq!(
            inventory.block_devices[0].partitions[0].label.as_deref(),
            Some("mfv-config")
        );
        assert_eq!(inventory.usb_devices.len(), 1);
        assert_eq!(inventory.cpu.logical_cpus, 2);
        assert_eq!(inventory.memory.total_bytes, Some(2 << 30));
        assert_eq!(inventory.issues, []);
        let issues: Vec<&ProbeIssue> = inventory.all_issues().collect();
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(
            inventory.nics[0].summary(),
            "eth0 mac=52:54:00:12:34:56 driver=e1000 bus=pci carrier=yes speed=1000Mbit/s kind=physical"
        );
        assert_eq!(
            inventory.block_devices[0].summary(),
            "vda size=32.0MiB kind=disk model=- serial=disk-1 removable=no fs=- label=- uuid=-; \
             vda1 size=4.0MiB fs=vfat label=mfv-config uuid=0000-BEEF"
        );
    }

    #[test]
    fn a_drive_without_a_medium_says_so_among_its_flags() {
        let fixture = crate::block::tests::Fixture::new();
        let reader = fixture.disk("sdb", None, 0);
        fs::write(reader.join("removable"), "1\n").unwrap();
        fixture.disk("vda", None, 2048);
        let devices = crate::block::list_block_devices_at(fixture.sysfs(), fixture.dev()).unwrap();
        let flags: Vec<String> = devices.iter().map(disk_flags).collect();
        assert_eq!(
            flags,
            [
                "removable,no-medium,rotational,virtual",
                "rotational,virtual"
            ]
        );
    }

    #[test]
    fn table_rendering() {
        let (_fixture, roots) = fixture_machine();
        let inventory = inventory_at(&roots);
        let text = inventory
            .render_table()
            .replace(&roots.dev.display().to_string(), "DEV");
        assert_eq!(
            text,
            "NICs\n\
             NAME  MAC                DRIVER  BUS  CARRIER  STATE  MBIT/S  KIND\n\
             eth0  52:54:00:12:34:56  e1000   pci  yes      up     1000    physical\n\
             \n\
             Disks\n\
             NAME    SIZE     KIND  FSTYPE  LABEL       UUID       MODEL  SERIAL  FLAGS\n\
             vda     32.0MiB  disk  -       -           -          -      disk-1  rotational\n  \
             vda1  4.0MiB   part  vfat    mfv-config  0000-BEEF  -      -       -\n\
             \n\
             USB\n\
             NAME  BUS  DEV  ID         MBIT/S  CLASS  PRODUCT               DRIVERS\n\
             usb1  001  001  1d6b:0002  480     09     EHCI Host Controller  -\n\
             \n\
             CPU\n\
             KEY             VALUE\n\
             model           Test CPU\n\
             vendor          -\n\
             logical CPUs    2\n\
             cores           2\n\
             sockets         1\n\
             virtualization  vmx\n\
             kvm             not usable (DEV/kvm does not exist)\n\
             \n\
             Memory\n\
             KEY        VALUE\n\
             total      2.0GiB\n\
             available  1.0GiB\n"
        );
        assert_eq!(inventory.to_string(), inventory.render_table());
    }

    #[test]
    fn nothing_readable_gives_issues_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let roots = SystemRoots {
            sysfs: dir.path().join("sys"),
            proc: dir.path().join("proc"),
            dev: dir.path().join("dev"),
        };
        let inventory = inventory_at(&roots);
        assert!(inventory.nics.is_empty() && inventory.block_devices.is_empty());
        assert!(inventory.usb_devices.is_empty());
        let paths: Vec<&Path> = inventory
            .all_issues()
            .map(|issue| issue.path.as_path())
            .collect();
        assert_eq!(
            paths,
            [
                roots.sysfs.join("class/net"),
                roots.sysfs.join("class/block"),
                roots.proc.join("cpuinfo"),
                roots.proc.join("meminfo"),
            ]
        );
        let text = inventory.render_table();
        assert!(text.contains("\nDisks\n(none)\n"), "{text}");
        assert!(text.contains("\nIssues (4)\ncannot list "), "{text}");
    }

    #[test]
    fn device_issues_are_in_all_issues_and_the_table() {
        let (_fixture, roots) = fixture_machine();
        fs::remove_file(roots.dev.join("vda1")).unwrap();
        let inventory = inventory_at(&roots);
        let issues: Vec<&ProbeIssue> = inventory.all_issues().collect();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, roots.dev.join("vda1"));
        assert!(
            inventory
                .render_table()
                .ends_with(&format!("\nIssues (1)\n{}\n", issues[0]))
        );
    }

    #[test]
    fn inventory_serializes_as_stable_json() {
        let (_fixture, roots) = fixture_machine();
        let json = serde_json::to_value(inventory_at(&roots)).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "block_devices",
                "cpu",
                "issues",
                "memory",
                "nics",
                "usb_devices"
            ]
        );
        assert_eq!(
            json["block_devices"][0]["partitions"][0]["label"],
            "mfv-config"
        );
        assert_eq!(json["usb_devices"][0]["vendor_id"], "1d6b");
        assert_eq!(json["memory"]["available_bytes"], 1u64 << 30);
        assert_eq!(json["cpu"]["virtualization"], "vmx");
        assert_eq!(json["nics"][0]["name"], "eth0");
    }

    #[test]
    fn sizes_and_summary_values() {
        for (bytes, text) in [
            (0, "0B"),
            (1023, "1023B"),
            (1024, "1.0KiB"),
            (1_474_560, "1.4MiB"),
            (64 << 20, "64.0MiB"),
            (256 << 30, "256.0GiB"),
            (u64::MAX, "16.0EiB"),
        ] {
            assert_eq!(human_size(bytes), text);
        }
        for (value, text) in [
            (None, "-"),
            (Some(""), "\"\""),
            (Some("mfv-config"), "mfv-config"),
            (Some("QEMU HARDDISK"), "\"QEMU HARDDISK\""),
            (Some("a=b"), "\"a=b\""),
            (Some("say \"hi\""), "\"say \\\"hi\\\"\""),
            (Some("tab\there"), "\"tab\\there\""),
        ] {
            assert_eq!(summary_value(value), text);
        }
    }

    #[test]
    fn virtual_nic_summary() {
        let nic = Nic {
            name: "br0".into(),
            mac: None,
            driver: None,
            bus: None,
            device_path: None,
            operstate: None,
            carrier: false,
            speed_mbps: None,
            is_virtual: true,
            issues: vec![],
        };
        assert_eq!(
            nic.summary(),
            "br0 mac=- driver=- bus=- carrier=no speed=- kind=virtual"
        );
    }

    /// Whole block device names of this machine as the inventory lists them: /sys/block
    /// without loop devices that have nothing behind them.
    fn system_block_names() -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir("/sys/block")
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| {
                let dir = Path::new("/sys/block").join(name);
                !(name.starts_with("loop")
                    && fs::read_to_string(dir.join("size")).is_ok_and(|size| size.trim() == "0")
                    && !dir.join("loop/backing_file").exists())
            })
            .collect();
        names.sort();
        names
    }

    /// The inventory of this machine lists what /sys/block holds, with sizes and flags as
    /// sysfs states them. Loop devices come and go while tests run, so the listing is retried
    /// until the directory is the same before and after it.
    #[test]
    fn block_devices_match_this_machines_sysfs() {
        let devices = (0..10)
            .find_map(|_| {
                let before = system_block_names();
                let devices = list_block_devices_at("/sys", "/dev").unwrap();
                let names: Vec<String> = devices.iter().map(|device| device.name.clone()).collect();
                (before == system_block_names() && names == before).then_some(devices)
            })
            .expect("the block device list kept changing");
        for device in &devices {
            let dir = Path::new("/sys/block").join(&device.name);
            let Ok(size) = fs::read_to_string(dir.join("size")) else {
                continue;
            };
            assert_eq!(device.size_bytes, size.trim().parse::<u64>().unwrap() * 512);
            let flag = |name: &str| fs::read_to_string(dir.join(name)).unwrap().trim() == "1";
            assert_eq!(device.read_only, flag("ro"), "{}", device.name);
            assert_eq!(device.removable, flag("removable"), "{}", device.name);
            assert_eq!(
                device.rotational,
                flag("queue/rotational"),
                "{}",
                device.name
            );
            assert_eq!(
                device.is_virtual,
                !dir.join("device").exists(),
                "{}",
                device.name
            );
        }
    }

    /// What `blkid -o export` says about a device node: its KEY=value lines. `-c /dev/null`
    /// leaves out blkid's cache file, which trusts entries younger than two seconds and so
    /// answers for the previous image when a loop device is reused quickly.
    fn blkid_export(node: &Path) -> BTreeMap<String, String> {
        let output = Command::new("blkid")
            .args(["-c", "/dev/null", "-o", "export"])
            .arg(node)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "blkid {} failed: {output:?}",
            node.display()
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    /// A loop device attached to an image file, detached on drop. Needs root and losetup.
    struct LoopDevice {
        node: PathBuf,
        _image_dir: tempfile::TempDir,
    }

    impl LoopDevice {
        /// A 32 MiB image formatted by `mkfs` with `args`, attached read-write.
        fn formatted(mkfs: &str, args: &[&str]) -> Self {
            let image_dir = tempfile::tempdir().unwrap();
            let image = image_dir.path().join("disk.img");
            fs::File::create(&image).unwrap().set_len(32 << 20).unwrap();
            mkfs_image(&image, mkfs, args);
            let output = Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&image)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "losetup failed (needs root): {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let node = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
            LoopDevice {
                node,
                _image_dir: image_dir,
            }
        }

        fn name(&self) -> String {
            self.node
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        }
    }

    impl Drop for LoopDevice {
        fn drop(&mut self) {
            let status = Command::new("losetup")
                .arg("--detach")
                .arg(&self.node)
                .status();
            if !status.is_ok_and(|status| status.success()) {
                eprintln!("could not detach {}", self.node.display());
            }
        }
    }

    /// The inventory of this machine shows the file system of a real loop device as blkid
    /// does.
    fn check_loop_device(loop_device: &LoopDevice, fs_type: &str, label: &str) {
        let name = loop_device.name();
        let inventory = inventory();
        let device = inventory
            .block_devices
            .iter()
            .find(|device| device.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {:#?}", inventory.block_devices));
        let blkid = blkid_export(&loop_device.node);
        assert_eq!(device.fs_type.as_deref(), Some(fs_type));
        assert_eq!(device.label.as_deref(), Some(label));
        assert_eq!(blkid.get("TYPE").map(String::as_str), Some(fs_type));
        assert_eq!(blkid.get("LABEL").map(String::as_str), Some(label));
        assert_eq!(device.uuid.as_ref(), blkid.get("UUID"));
        assert!(device.uuid.is_some());
        assert_eq!(device.kind, BlockKind::Loop);
        assert!(device.is_virtual);
        assert_eq!(device.size_bytes, 32 << 20);
        assert!(
            device
                .backing_file
                .as_ref()
                .is_some_and(|file| file.ends_with("disk.img")),
            "{:?}",
            device.backing_file
        );
        assert!(device.issues.is_empty(), "{:?}", device.issues);
        assert!(
            device
                .summary()
                .contains(&format!("fs={fs_type} label={label} uuid="))
        );
    }

    #[test]
    fn ext4_loop_device_matches_blkid() {
        let loop_device = LoopDevice::formatted("mkfs.ext4", &["-q", "-F", "-L", "mfvtest"]);
        check_loop_device(&loop_device, "ext4", "mfvtest");
    }

    #[test]
    fn vfat_loop_device_matches_blkid() {
        let loop_device = LoopDevice::formatted("mkfs.vfat", &["-n", "MFVFAT"]);
        check_loop_device(&loop_device, "vfat", "MFVFAT");
    }
}
