//! Block devices (disks, their partitions, loop/ram/zram/dm devices) as sysfs shows them, with
//! the file system type, label and UUID that libblkid reads from the device nodes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use mfv_linux::blkid::{Signature, SignatureError, probe_signature};
use mfv_linux::block::{device_node, optical_drive_has_disc};
use serde::Serialize;

use crate::inventory::{human_size, summary_value};
use crate::sysfs::{read_attribute, resolve_under};
use crate::{ProbeError, ProbeIssue};

/// The kernel counts `size` and partition `start` in 512-byte sectors, whatever the
/// device's logical block size.
const SECTOR_BYTES: u64 = 512;

/// One whole block device (not a partition): what sysfs says about it and what libblkid found
/// on it. Serializes with these field names (snake_case).
///
/// Fields the probe could not read are `None` (or `false`, or 0) and the reason is in
/// `issues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockDevice {
    /// Kernel name, e.g. `sda`, `vda`, `nvme0n1`, `loop0`.
    pub name: String,
    /// What kind of device the name says it is.
    pub kind: BlockKind,
    /// Size in bytes (`size` × 512); 0 for a removable device without a medium. An empty
    /// CD/DVD drive is asked (`mfv_linux::block::optical_drive_has_disc`), since its driver
    /// gives it a placeholder size.
    pub size_bytes: u64,
    /// `device/vendor`, trimmed (e.g. `ATA`, `QEMU`; virtio devices show the PCI vendor id
    /// `0x1af4`).
    pub vendor: Option<String>,
    /// `device/model`, trimmed (e.g. `QEMU HARDDISK`).
    pub model: Option<String>,
    /// Serial number, from the first of these that exists and is not empty: `serial`
    /// (virtio-blk), `device/serial` (NVMe, MMC), `device/vpd_pg80` (the SCSI unit serial
    /// number page, which SATA and USB disks behind the SCSI layer have), `device/wwid` (a
    /// world-wide identifier, used when there is no serial number).
    pub serial: Option<String>,
    /// `removable`: the medium can be removed (USB sticks, card readers, CD and floppy drives).
    pub removable: bool,
    /// `queue/rotational`: a spinning disk (QEMU's emulated disks say yes as well).
    pub rotational: bool,
    /// `ro`: the kernel refuses writes.
    pub read_only: bool,
    /// A software device (loop, ram, zram, device mapper, md): it has no `device` link, or it
    /// lives under `devices/virtual`.
    pub is_virtual: bool,
    /// For a loop device, the file behind it (`loop/backing_file`).
    pub backing_file: Option<PathBuf>,
    /// Partition table type found by libblkid (`dos`, `gpt`, ...).
    pub partition_table: Option<String>,
    /// File system type found by libblkid on the whole device (`ext4`, `vfat`, `iso9660`, ...).
    pub fs_type: Option<String>,
    /// File system label.
    pub label: Option<String>,
    /// File system UUID as libblkid prints it (a FAT volume id looks like `1234-ABCD`).
    pub uuid: Option<String>,
    /// The partitions, sorted by number.
    pub partitions: Vec<Partition>,
    /// What could not be read or probed for this device or its partitions; the other fields
    /// are still filled in.
    pub issues: Vec<ProbeIssue>,
}

/// One partition of a [`BlockDevice`]. Serializes with these field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Kernel name, e.g. `sda1`, `nvme0n1p2`.
    pub name: String,
    /// Partition number (`partition`).
    pub number: Option<u32>,
    /// Offset from the start of the disk in bytes (`start` × 512).
    pub start_bytes: Option<u64>,
    /// Size in bytes (`size` × 512).
    pub size_bytes: u64,
    /// `ro`: the kernel refuses writes.
    pub read_only: bool,
    /// File system type found by libblkid.
    pub fs_type: Option<String>,
    /// File system label.
    pub label: Option<String>,
    /// File system UUID.
    pub uuid: Option<String>,
}

/// What kind of block device the kernel name says it is. Serializes in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// A disk (SCSI/SATA/USB `sd*`, virtio `vd*`, `nvme*`, `mmcblk*`, ...).
    Disk,
    /// A CD/DVD drive (`sr*`).
    Optical,
    /// A floppy drive (`fd*`).
    Floppy,
    /// A loop device (`loop*`).
    Loop,
    /// A RAM disk (`ram*`).
    Ram,
    /// A compressed RAM disk (`zram*`).
    Zram,
    /// A device mapper device (`dm-*`).
    DeviceMapper,
    /// A software RAID device (`md*`).
    Md,
}

impl BlockKind {
    /// The kind of the device called `name`.
    pub fn from_name(name: &str) -> Self {
        let has_number_after = |prefix: &str| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        };
        if has_number_after("loop") {
            BlockKind::Loop
        } else if has_number_after("zram") {
            BlockKind::Zram
        } else if has_number_after("ram") {
            BlockKind::Ram
        } else if has_number_after("dm-") {
            BlockKind::DeviceMapper
        } else if has_number_after("md") {
            BlockKind::Md
        } else if has_number_after("sr") {
            BlockKind::Optical
        } else if has_number_after("fd") {
            BlockKind::Floppy
        } else {
            BlockKind::Disk
        }
    }

    /// The serialized spelling, e.g. `disk` or `device_mapper`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::Disk => "disk",
            BlockKind::Optical => "optical",
            BlockKind::Floppy => "floppy",
            BlockKind::Loop => "loop",
            BlockKind::Ram => "ram",
            BlockKind::Zram => "zram",
            BlockKind::DeviceMapper => "device_mapper",
            BlockKind::Md => "md",
        }
    }
}

impl std::fmt::Display for BlockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BlockDevice {
    /// One line for the console: name, size, kind, model, serial, removable, the file system
    /// on the whole device, then `; ` and the same for each partition. Missing values are
    /// `-`; values with spaces or `=`/`;`/`"` are quoted like Rust strings:
    ///
    /// `vda size=64.0MiB kind=disk model=- serial=QM00001 removable=no fs=- label=- uuid=-; vda1 size=63.0MiB fs=ext4 label=mfv-config uuid=0b6f...`
    ///
    /// A removable device without a medium ends with `medium=none`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} size={} kind={} model={} serial={} removable={} fs={} label={} uuid={}",
            self.name,
            human_size(self.size_bytes),
            self.kind,
            summary_value(self.model.as_deref()),
            summary_value(self.serial.as_deref()),
            if self.removable { "yes" } else { "no" },
            summary_value(self.fs_type.as_deref()),
            summary_value(self.label.as_deref()),
            summary_value(self.uuid.as_deref()),
        );
        if self.has_no_medium() {
            line.push_str(" medium=none");
        }
        for partition in &self.partitions {
            line.push_str(&format!(
                "; {} size={} fs={} label={} uuid={}",
                partition.name,
                human_size(partition.size_bytes),
                summary_value(partition.fs_type.as_deref()),
                summary_value(partition.label.as_deref()),
                summary_value(partition.uuid.as_deref()),
            ));
        }
        line
    }

    /// A removable device without a medium: an empty CD/DVD, floppy or card reader drive.
    pub fn has_no_medium(&self) -> bool {
        self.removable && self.size_bytes == 0
    }
}

/// Lists the whole block devices under `<sysfs_root>/block` (or `<sysfs_root>/class/block`
/// without its partitions when there is no `block` directory), sorted by name, and probes
/// `<dev_root>/<name>` of each device and partition read-only with libblkid.
///
/// Loop devices without a backing file (size 0) are left out, as `lsblk` does; no device of
/// size 0 is probed. Fails only when neither directory can be listed; a device node that
/// cannot be opened or probed, or an unreadable attribute, is recorded in that device's
/// [`BlockDevice::issues`] and the listing goes on.
pub fn list_block_devices_at(
    sysfs_root: impl AsRef<Path>,
    dev_root: impl AsRef<Path>,
) -> Result<Vec<BlockDevice>, ProbeError> {
    let root = sysfs_root.as_ref();
    let dev_root = dev_root.as_ref();
    let (list_dir, entries) = match list_names(&root.join("block")) {
        Ok(names) => (root.join("block"), names),
        Err(ProbeError::ReadDir { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            let class_dir = root.join("class/block");
            let names = list_names(&class_dir)?
                .into_iter()
                .filter(|name| !class_dir.join(name).join("partition").exists())
                .collect();
            (class_dir, names)
        }
        Err(error) => return Err(error),
    };
    Ok(entries
        .into_iter()
        .filter_map(|name| read_block_device(root, dev_root, &list_dir.join(&name), name))
        .collect())
}

/// The entry names of a directory, sorted.
pub(crate) fn list_names(dir: &Path) -> Result<Vec<String>, ProbeError> {
    let read_dir_error = |source| ProbeError::ReadDir {
        path: dir.to_owned(),
        source,
    };
    let mut names = fs::read_dir(dir)
        .map_err(read_dir_error)?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_dir_error)?;
    names.sort();
    Ok(names)
}

/// Reads an attribute that not every device has: `Ok(None)` when the file does not exist or
/// holds only white space; otherwise trimmed of surrounding white space.
pub(crate) fn read_optional_attribute(path: &Path) -> Result<Option<String>, ProbeError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|text| !text.is_empty())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => crate::sysfs::attribute_read_failure(path, error),
    }
}

/// Collects issues while one device is read.
#[derive(Debug, Default)]
pub(crate) struct IssueLog {
    pub(crate) issues: Vec<ProbeIssue>,
}

impl IssueLog {
    /// Records a probe error.
    pub(crate) fn note(&mut self, error: ProbeError) {
        self.issues.push(ProbeIssue::from_error(&error));
    }

    /// `value`, or `None` after recording its error.
    pub(crate) fn value_or_note<T>(&mut self, value: Result<Option<T>, ProbeError>) -> Option<T> {
        value.unwrap_or_else(|error| {
            self.note(error);
            None
        })
    }

    /// Reads a required attribute and parses it; a missing, unreadable or malformed value is
    /// recorded and gives `None`.
    pub(crate) fn parsed<T>(
        &mut self,
        path: &Path,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<T> {
        let text = self.value_or_note(read_attribute(path))?;
        let value = parse(text.trim());
        if value.is_none() {
            self.note(ProbeError::Malformed {
                path: path.to_owned(),
                value: text,
                expected,
            });
        }
        value
    }

    /// Reads a `0`/`1` attribute; anything else is recorded and gives `false`.
    pub(crate) fn flag(&mut self, path: &Path) -> bool {
        self.parsed(path, "0 or 1", |text| match text {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        })
        .unwrap_or(false)
    }
}

/// Reads `size` (in sectors) as bytes.
fn size_bytes(log: &mut IssueLog, path: &Path) -> Option<u64> {
    log.parsed(path, "a size in 512-byte sectors", |text| {
        text.parse::<u64>().ok()?.checked_mul(SECTOR_BYTES)
    })
}

/// Reads one whole device; `None` for a loop device with nothing behind it.
fn read_block_device(
    root: &Path,
    dev_root: &Path,
    dir: &Path,
    name: String,
) -> Option<BlockDevice> {
    let kind = BlockKind::from_name(&name);
    let mut log = IssueLog::default();
    let size = size_bytes(&mut log, &dir.join("size"));
    let backing_file = match kind {
        BlockKind::Loop => log
            .value_or_note(read_optional_attribute(&dir.join("loop/backing_file")))
            .map(PathBuf::from),
        _ => None,
    };
    if kind == BlockKind::Loop && size == Some(0) && backing_file.is_none() {
        return None;
    }
    let size_bytes = match size {
        Some(bytes) if bytes > 0 && kind == BlockKind::Optical && !holds_disc(dev_root, &name) => 0,
        size => size.unwrap_or(0),
    };

    let device = dir.join("device");
    let vendor = log.value_or_note(read_optional_attribute(&device.join("vendor")));
    let model = log.value_or_note(read_optional_attribute(&device.join("model")));
    let serial = read_serial(&mut log, dir);
    let removable = log.flag(&dir.join("removable"));
    let rotational = log.flag(&dir.join("queue/rotational"));
    let read_only = log.flag(&dir.join("ro"));
    let device_path = log.value_or_note(resolve_under(root, &device));
    let under_virtual = log
        .value_or_note(resolve_under(root, dir))
        .is_some_and(|path| path.starts_with("devices/virtual"));
    let is_virtual = device_path.is_none() || under_virtual;

    let mut partitions = read_partitions(&mut log, dev_root, dir);
    partitions.sort_by(|a, b| (a.number, &a.name).cmp(&(b.number, &b.name)));

    let signature = probe_node(&mut log, dev_root, &name, size_bytes);
    Some(BlockDevice {
        name,
        kind,
        size_bytes,
        vendor,
        model,
        serial,
        removable,
        rotational,
        read_only,
        is_virtual,
        backing_file,
        partition_table: signature.partition_table,
        fs_type: signature.fs_type,
        label: signature.label,
        uuid: signature.uuid,
        partitions,
        issues: log.issues,
    })
}

/// Whether the CD/DVD drive `name` holds a disc; a drive that cannot be asked counts as
/// holding one, and the probe of its node says what is wrong.
fn holds_disc(dev_root: &Path, name: &str) -> bool {
    optical_drive_has_disc(&device_node(dev_root, name)).unwrap_or(true)
}

/// The serial number from the sources listed at [`BlockDevice::serial`], in that order.
fn read_serial(log: &mut IssueLog, dir: &Path) -> Option<String> {
    if let Some(serial) = log.value_or_note(read_optional_attribute(&dir.join("serial"))) {
        return Some(serial);
    }
    let device = dir.join("device");
    if let Some(serial) = log.value_or_note(read_optional_attribute(&device.join("serial"))) {
        return Some(serial);
    }
    let page_path = device.join("vpd_pg80");
    match fs::read(&page_path) {
        Ok(page) => {
            if let Some(serial) = unit_serial_number(&page) {
                return Some(serial);
            }
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(source) => log.note(ProbeError::ReadAttribute {
            path: page_path,
            source,
        }),
    }
    match read_optional_attribute(&device.join("wwid")) {
        // The SCSI layer's answer for a device without an identifier (an empty CD drive).
        Err(ProbeError::ReadAttribute { source, .. })
            if source.raw_os_error() == Some(nix::libc::ENXIO) =>
        {
            None
        }
        wwid => log.value_or_note(wwid),
    }
}

/// The serial number in a SCSI "unit serial number" VPD page (0x80): a 4-byte header whose
/// last two bytes are the length, then that many ASCII bytes, space padded.
fn unit_serial_number(page: &[u8]) -> Option<String> {
    let header = page.get(..4)?;
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let body = page.get(4..)?;
    let body = body.get(..length).unwrap_or(body);
    let text = String::from_utf8_lossy(body);
    let serial = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!serial.is_empty()).then(|| serial.to_owned())
}

/// The partitions of the disk at `dir`: its subdirectories that have a `partition` file.
fn read_partitions(log: &mut IssueLog, dev_root: &Path, dir: &Path) -> Vec<Partition> {
    let names = match list_names(dir) {
        Ok(names) => names,
        Err(error) => {
            log.note(error);
            return Vec::new();
        }
    };
    names
        .into_iter()
        .filter(|name| dir.join(name).join("partition").is_file())
        .map(|name| {
            let part_dir = dir.join(&name);
            let number = log.parsed(&part_dir.join("partition"), "a partition number", |text| {
                text.parse().ok()
            });
            let start_bytes = log.parsed(
                &part_dir.join("start"),
                "a start in 512-byte sectors",
                |text| text.parse::<u64>().ok()?.checked_mul(SECTOR_BYTES),
            );
            let size_bytes = size_bytes(log, &part_dir.join("size")).unwrap_or(0);
            let read_only = log.flag(&part_dir.join("ro"));
            let signature = probe_node(log, dev_root, &name, size_bytes);
            Partition {
                name,
                number,
                start_bytes,
                size_bytes,
                read_only,
                fs_type: signature.fs_type,
                label: signature.label,
                uuid: signature.uuid,
            }
        })
        .collect()
}

/// A probe failure as an issue of the device: the node and the error with its causes.
fn signature_issue(error: &SignatureError) -> ProbeIssue {
    ProbeIssue {
        path: error.path().to_owned(),
        message: mfv_linux::error_chain(error),
    }
}

/// Probes the node of `name` unless the device is empty; a failure is recorded.
fn probe_node(log: &mut IssueLog, dev_root: &Path, name: &str, size_bytes: u64) -> Signature {
    if size_bytes == 0 {
        return Signature::default();
    }
    probe_signature(&device_node(dev_root, name)).unwrap_or_else(|error| {
        log.issues.push(signature_issue(&error));
        Signature::default()
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::fs::symlink;
    use std::process::Command;

    use super::*;

    /// A fixture tree laid out like the kernel's: `sys/devices/.../block/<name>` directories,
    /// `sys/block/<name>` and `sys/class/block/<name>` relative symlinks to them, partitions as
    /// subdirectories, and a `dev` directory for the nodes libblkid probes.
    pub(crate) struct Fixture {
        dir: tempfile::TempDir,
    }

    /// Writes `text` to `path`, creating the parent directories.
    pub(crate) fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    impl Fixture {
        pub(crate) fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            for sub in ["sys/block", "sys/class/block", "dev"] {
                fs::create_dir_all(dir.path().join(sub)).unwrap();
            }
            Fixture { dir }
        }

        pub(crate) fn root(&self) -> &Path {
            self.dir.path()
        }

        pub(crate) fn sysfs(&self) -> PathBuf {
            self.root().join("sys")
        }

        pub(crate) fn dev(&self) -> PathBuf {
            self.root().join("dev")
        }

        /// Adds a whole device below `parent` (a device directory under `sys/devices`, e.g.
        /// `pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0`), or under
        /// `devices/virtual/block` when `parent` is `None`; returns its directory.
        pub(crate) fn disk(&self, name: &str, parent: Option<&str>, sectors: u64) -> PathBuf {
            let parent_rel = parent.unwrap_or("virtual");
            let dir_rel = format!("devices/{parent_rel}/block/{name}");
            let dir = self.sysfs().join(&dir_rel);
            write(&dir.join("size"), &format!("{sectors}\n"));
            write(&dir.join("ro"), "0\n");
            write(&dir.join("removable"), "0\n");
            write(&dir.join("queue/rotational"), "1\n");
            symlink(
                format!("../{dir_rel}"),
                self.sysfs().join("block").join(name),
            )
            .unwrap();
            symlink(
                format!("../../{dir_rel}"),
                self.sysfs().join("class/block").join(name),
            )
            .unwrap();
            if parent.is_some() {
                symlink("../..", dir.join("device")).unwrap();
            }
            dir
        }

        /// Adds partition `number` of the disk at `disk_dir`.
        pub(crate) fn partition(
            &self,
            disk_dir: &Path,
            name: &str,
            number: u32,
            start: u64,
            sectors: u64,
        ) -> PathBuf {
            let dir = disk_dir.join(name);
            write(&dir.join("partition"), &format!("{number}\n"));
            write(&dir.join("start"), &format!("{start}\n"));
            write(&dir.join("size"), &format!("{sectors}\n"));
            write(&dir.join("ro"), "0\n");
            let relative = dir.canonicalize().unwrap();
            let relative = relative
                .strip_prefix(self.sysfs().canonicalize().unwrap())
                .unwrap();
            symlink(
                Path::new("../..").join(relative),
                self.sysfs().join("class/block").join(name),
            )
            .unwrap();
            dir
        }

        /// Creates the device node `dev/<name>` as a file of `bytes` zero bytes.
        pub(crate) fn blank_node(&self, name: &str, bytes: u64) -> PathBuf {
            let path = self.dev().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::File::create(&path).unwrap().set_len(bytes).unwrap();
            path
        }

        /// Creates the device node `dev/<name>` holding a file system made by `mkfs` with
        /// `args` (the image path is appended).
        pub(crate) fn formatted_node(&self, name: &str, bytes: u64, mkfs: &str, args: &[&str]) {
            let path = self.blank_node(name, bytes);
            mkfs_image(&path, mkfs, args);
        }
    }

    /// Runs `mkfs` on the image file at `path` (e2fsprogs and dosfstools are in xtask's
    /// package list).
    pub(crate) fn mkfs_image(path: &Path, mkfs: &str, args: &[&str]) {
        let output = Command::new(mkfs)
            .args(args)
            .arg(path)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {mkfs}: {error}"));
        assert!(
            output.status.success(),
            "{mkfs} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    const SATA_PARENT: &str = "pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0";
    const FAT_UUID: &str = "1234-ABCD";
    const EXT4_UUID: &str = "0b6f3c1e-1111-4222-8333-444455556666";

    /// A SATA disk `sda` of 64 MiB: vendor, model and a VPD serial page, an MBR-less blank
    /// node, partition 1 with FAT (label BOOT) and partition 2 with ext4 (label data).
    fn sata_disk(fixture: &Fixture) -> PathBuf {
        let disk = fixture.disk("sda", Some(SATA_PARENT), 131_072);
        let device = disk.join("device");
        write(&device.join("vendor"), "ATA     \n");
        write(&device.join("model"), "QEMU HARDDISK   \n");
        let mut page = vec![0x00, 0x80, 0x00, 0x14];
        page.extend_from_slice(b"         QM00001    ");
        fs::write(device.join("vpd_pg80"), page).unwrap();
        write(&device.join("wwid"), "t10.ATA     QEMU HARDDISK  QM00001\n");
        fixture.partition(&disk, "sda1", 1, 2048, 2048);
        fixture.partition(&disk, "sda2", 2, 4096, 8192);
        fixture.blank_node("sda", 64 << 20);
        fixture.formatted_node(
            "sda1",
            1 << 20,
            "mkfs.vfat",
            &["-n", "BOOT", "-i", "1234ABCD"],
        );
        fixture.formatted_node(
            "sda2",
            4 << 20,
            "mkfs.ext4",
            &["-q", "-F", "-L", "data", "-U", EXT4_UUID],
        );
        disk
    }

    fn list(fixture: &Fixture) -> Vec<BlockDevice> {
        list_block_devices_at(fixture.sysfs(), fixture.dev()).unwrap()
    }

    /// A CD drive whose node cannot be asked for its disc (here a file, not a drive) keeps
    /// the size sysfs gives and is probed; a removable device of size 0 has no medium, and its
    /// summary says so.
    #[test]
    fn drives_without_a_medium_say_so_and_a_drive_that_cannot_be_asked_is_probed() {
        let fixture = Fixture::new();
        let drive = fixture.disk("sr0", Some(SATA_PARENT), 2_097_152);
        write(&drive.join("removable"), "1\n");
        fixture.formatted_node("sr0", 1 << 20, "mkfs.vfat", &["-n", "DISC"]);
        let reader = fixture.disk("sdb", Some(SATA_PARENT), 0);
        write(&reader.join("removable"), "1\n");
        let devices = list(&fixture);
        let [reader, drive] = devices.as_slice() else {
            panic!("{devices:?}");
        };
        assert_eq!(drive.size_bytes, 1 << 30);
        assert_eq!(drive.label.as_deref(), Some("DISC"));
        assert!(!drive.has_no_medium());
        assert!(drive.issues.is_empty(), "{:?}", drive.issues);
        assert!(reader.has_no_medium());
        assert!(
            reader.summary().ends_with(" uuid=- medium=none"),
            "{}",
            reader.summary()
        );
        assert!(!drive.summary().contains("medium="), "{}", drive.summary());
    }

    #[test]
    fn sata_disk_with_partitions_and_file_systems() {
        let fixture = Fixture::new();
        sata_disk(&fixture);
        let devices = list(&fixture);
        assert_eq!(
            devices,
            vec![BlockDevice {
                name: "sda".into(),
                kind: BlockKind::Disk,
                size_bytes: 64 << 20,
                vendor: Some("ATA".into()),
                model: Some("QEMU HARDDISK".into()),
                serial: Some("QM00001".into()),
                removable: false,
                rotational: true,
                read_only: false,
                is_virtual: false,
                backing_file: None,
                partition_table: None,
                fs_type: None,
                label: None,
                uuid: None,
                partitions: vec![
                    Partition {
                        name: "sda1".into(),
                        number: Some(1),
                        start_bytes: Some(1 << 20),
                        size_bytes: 1 << 20,
                        read_only: false,
                        fs_type: Some("vfat".into()),
                        label: Some("BOOT".into()),
                        uuid: Some(FAT_UUID.into()),
                    },
                    Partition {
                        name: "sda2".into(),
                        number: Some(2),
                        start_bytes: Some(2 << 20),
                        size_bytes: 4 << 20,
                        read_only: false,
                        fs_type: Some("ext4".into()),
                        label: Some("data".into()),
                        uuid: Some(EXT4_UUID.into()),
                    },
                ],
                issues: vec![],
            }]
        );
    }

    #[test]
    fn whole_device_file_system_and_flags() {
        let fixture = Fixture::new();
        let disk = fixture.disk("sdb", Some("pci0000:00/usb1/1-1/1-1:1.0/host2"), 8192);
        write(&disk.join("removable"), "1\n");
        write(&disk.join("ro"), "1\n");
        write(&disk.join("queue/rotational"), "0\n");
        write(&disk.join("device/serial"), "  0123456789AB \n");
        fixture.formatted_node("sdb", 4 << 20, "mkfs.vfat", &["-n", "MFV-CONFIG"]);
        let device = list(&fixture).remove(0);
        assert!(device.removable && device.read_only && !device.rotational);
        assert_eq!(device.serial.as_deref(), Some("0123456789AB"));
        assert_eq!(device.fs_type.as_deref(), Some("vfat"));
        assert_eq!(device.label.as_deref(), Some("MFV-CONFIG"));
        assert!(device.uuid.is_some());
        assert!(device.issues.is_empty(), "{:?}", device.issues);
    }

    #[test]
    fn serial_sources_in_order() {
        let fixture = Fixture::new();
        let vda = fixture.disk("vda", Some("pci0000:00/0000:00:04.0/virtio1"), 8);
        write(&vda.join("serial"), "virtio-serial\n");
        write(&vda.join("device/serial"), "not used\n");
        let nvme = fixture.disk("nvme0n1", Some("pci0000:00/0000:00:05.0/nvme/nvme0"), 8);
        write(&nvme.join("device/serial"), "NVME0001\n");
        write(&nvme.join("device/wwid"), "nvme.wwid\n");
        let wwid_only = fixture.disk("sdc", Some("pci0000:00/0000:00:06.0/host3/0:0:0:0"), 8);
        fs::write(wwid_only.join("device/vpd_pg80"), [0, 0x80, 0, 0]).unwrap();
        write(&wwid_only.join("device/wwid"), "naa.5000c500a1b2c3d4\n");
        fixture.disk("sdd", Some("pci0000:00/0000:00:07.0/host4/0:0:0:0"), 8);
        for name in ["vda", "nvme0n1", "sdc", "sdd"] {
            fixture.blank_node(name, 4096);
        }
        let serials: Vec<(String, Option<String>)> = list(&fixture)
            .into_iter()
            .map(|device| (device.name, device.serial))
            .collect();
        assert_eq!(
            serials,
            vec![
                ("nvme0n1".into(), Some("NVME0001".into())),
                ("sdc".into(), Some("naa.5000c500a1b2c3d4".into())),
                ("sdd".into(), None),
                ("vda".into(), Some("virtio-serial".into())),
            ]
        );
    }

    #[test]
    fn unit_serial_number_pages() {
        let page = |body: &[u8], length: u16| {
            let mut page = vec![0, 0x80];
            page.extend_from_slice(&length.to_be_bytes());
            page.extend_from_slice(body);
            page
        };
        assert_eq!(
            unit_serial_number(&page(b"  AB12  ", 8)),
            Some("AB12".into())
        );
        // A length beyond the page takes what is there; trailing NULs are padding.
        assert_eq!(unit_serial_number(&page(b"XY\0\0", 40)), Some("XY".into()));
        assert_eq!(
            unit_serial_number(&page(b"SERIALjunk", 6)),
            Some("SERIAL".into())
        );
        assert_eq!(unit_serial_number(&page(b"    ", 4)), None);
        assert_eq!(unit_serial_number(&[0, 0x80]), None);
    }

    #[test]
    fn partitions_sort_by_number() {
        let fixture = Fixture::new();
        let disk = fixture.disk("vdb", Some("pci0000:00/0000:00:08.0/virtio3"), 65536);
        for number in [10, 2, 1] {
            fixture.partition(
                &disk,
                &format!("vdb{number}"),
                number,
                u64::from(number) * 2048,
                2048,
            );
        }
        fs::create_dir(disk.join("holders-not-a-partition")).unwrap();
        let device = list(&fixture).remove(0);
        let names: Vec<&str> = device.partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["vdb1", "vdb2", "vdb10"]);
        // No nodes exist: each probe failure is an issue naming the node.
        assert_eq!(device.issues.len(), 4, "{:?}", device.issues);
        let message = &device.issues[0].message;
        assert!(
            message.starts_with(&format!(
                "cannot open {} read-only: No such file",
                fixture.dev().join("vdb1").display()
            )),
            "{message}"
        );
    }

    #[test]
    fn software_devices_are_virtual_and_empty_loops_are_left_out() {
        let fixture = Fixture::new();
        fixture.disk("loop0", None, 0);
        let attached = fixture.disk("loop1", None, 2048);
        write(
            &attached.join("loop/backing_file"),
            "/var/tmp/disk image.img\n",
        );
        fixture.blank_node("loop1", 1 << 20);
        fixture.disk("zram0", None, 0);
        fixture.disk("dm-0", None, 0);
        fixture.disk("ram0", None, 0);
        let devices = list(&fixture);
        let kinds: Vec<(&str, BlockKind, bool)> = devices
            .iter()
            .map(|device| (device.name.as_str(), device.kind, device.is_virtual))
            .collect();
        assert_eq!(
            kinds,
            [
                ("dm-0", BlockKind::DeviceMapper, true),
                ("loop1", BlockKind::Loop, true),
                ("ram0", BlockKind::Ram, true),
                ("zram0", BlockKind::Zram, true),
            ]
        );
        assert_eq!(
            devices[1].backing_file,
            Some(PathBuf::from("/var/tmp/disk image.img"))
        );
        // Size 0 is not probed, so the missing nodes of dm-0, ram0 and zram0 are no issue.
        for device in &devices {
            assert!(
                device.issues.is_empty(),
                "{}: {:?}",
                device.name,
                device.issues
            );
        }
    }

    #[test]
    fn kinds_from_names() {
        for (name, kind) in [
            ("sda", BlockKind::Disk),
            ("sr0", BlockKind::Optical),
            ("fd0", BlockKind::Floppy),
            ("loop12", BlockKind::Loop),
            ("ram3", BlockKind::Ram),
            ("zram0", BlockKind::Zram),
            ("dm-2", BlockKind::DeviceMapper),
            ("md127", BlockKind::Md),
            ("nvme0n1", BlockKind::Disk),
            ("mmcblk0", BlockKind::Disk),
            ("srx", BlockKind::Disk),
            ("loop", BlockKind::Disk),
        ] {
            assert_eq!(BlockKind::from_name(name), kind, "{name}");
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
    }

    #[test]
    fn slash_in_a_name_is_a_subdirectory_of_dev() {
        let fixture = Fixture::new();
        fixture.disk("cciss!c0d0", Some("pci0000:00/0000:00:09.0/cciss0"), 2048);
        fixture.formatted_node("cciss/c0d0", 1 << 20, "mkfs.vfat", &["-n", "RAID"]);
        let device = list(&fixture).remove(0);
        assert_eq!(device.label.as_deref(), Some("RAID"));
        assert!(device.issues.is_empty(), "{:?}", device.issues);
    }

    #[test]
    fn malformed_and_unreadable_attributes_are_issues() {
        let fixture = Fixture::new();
        let disk = sata_disk(&fixture);
        write(&disk.join("size"), "lots\n");
        write(&disk.join("ro"), "maybe\n");
        fs::remove_file(disk.join("removable")).unwrap();
        fs::remove_file(disk.join("device/model")).unwrap();
        fs::create_dir(disk.join("device/model")).unwrap();
        write(&disk.join("sda1/partition"), "first\n");
        write(&disk.join("sda2/start"), "-5\n");
        fixture.disk("sdb", Some("pci0000:00/0000:00:1f.2/ata2/host1/0:0:0:0"), 8);
        fixture.blank_node("sdb", 4096);

        let devices = list(&fixture);
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[1].name, "sdb");
        assert!(devices[1].issues.is_empty(), "{:?}", devices[1].issues);
        let sda = &devices[0];
        let root = format!("{}/", fixture.root().display());
        let messages: Vec<String> = sda
            .issues
            .iter()
            .map(|issue| issue.message.replace(&root, ""))
            .collect();
        assert_eq!(
            messages,
            [
                "sys/block/sda/size: unexpected value \"lots\", expected a size in 512-byte sectors",
                "cannot read sys/block/sda/device/model: Is a directory (os error 21)",
                "cannot read sys/block/sda/removable: No such file or directory (os error 2)",
                "sys/block/sda/ro: unexpected value \"maybe\", expected 0 or 1",
                "sys/block/sda/sda1/partition: unexpected value \"first\", expected a partition number",
                "sys/block/sda/sda2/start: unexpected value \"-5\", expected a start in 512-byte sectors",
            ]
        );
        // The size could not be read, so the whole device was not probed; the rest was.
        assert_eq!(sda.size_bytes, 0);
        assert_eq!(sda.serial.as_deref(), Some("QM00001"));
        assert_eq!(sda.partitions[0].number, None);
        assert_eq!(sda.partitions[0].label.as_deref(), Some("BOOT"));
        assert_eq!(sda.partitions[1].start_bytes, None);
    }

    #[test]
    fn ambiguous_and_unprobeable_nodes_are_issues() {
        let fixture = Fixture::new();
        fixture.disk("vdc", Some("pci0000:00/0000:00:0a.0/virtio4"), 16384);
        fixture.disk("vdd", Some("pci0000:00/0000:00:0b.0/virtio5"), 16384);
        // A FAT volume with an ext4 superblock written over its reserved sectors: two file
        // systems claim the device.
        let both = fixture.dev().join("vdc");
        fs::File::create(&both).unwrap().set_len(8 << 20).unwrap();
        mkfs_image(&both, "mkfs.vfat", &["-n", "TWO"]);
        let ext4 = fixture.root().join("ext4.img");
        fs::File::create(&ext4).unwrap().set_len(8 << 20).unwrap();
        mkfs_image(&ext4, "mkfs.ext4", &["-q", "-F"]);
        let superblock = &fs::read(&ext4).unwrap()[1024..2048];
        let mut image = fs::read(&both).unwrap();
        image[1024..2048].copy_from_slice(superblock);
        fs::write(&both, image).unwrap();
        // A directory opens read-only but is no device.
        fs::create_dir(fixture.dev().join("vdd")).unwrap();

        let devices = list(&fixture);
        assert_eq!(devices[0].fs_type, None);
        assert_eq!(
            devices[0].issues,
            [ProbeIssue {
                path: both.clone(),
                message: format!(
                    "{}: libblkid found more than one file system signature",
                    both.display()
                ),
            }]
        );
        assert_eq!(devices[1].issues.len(), 1, "{:?}", devices[1].issues);
        assert!(
            devices[1].issues[0].message.starts_with(&format!(
                "libblkid cannot probe {}",
                fixture.dev().join("vdd").display()
            )),
            "{:?}",
            devices[1].issues
        );
    }

    #[test]
    fn falls_back_to_class_block_without_partitions() {
        let fixture = Fixture::new();
        let disk = sata_disk(&fixture);
        assert!(disk.exists());
        fs::remove_dir_all(fixture.sysfs().join("block")).unwrap();
        let devices = list(&fixture);
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].partitions.len(), 2);
    }

    #[test]
    fn unlistable_directories_are_errors() {
        let fixture = Fixture::new();
        fs::remove_dir_all(fixture.sysfs().join("block")).unwrap();
        fs::remove_dir_all(fixture.sysfs().join("class/block")).unwrap();
        let error = list_block_devices_at(fixture.sysfs(), fixture.dev()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot list {}",
                fixture.sysfs().join("class/block").display()
            )
        );

        fs::write(fixture.sysfs().join("block"), "").unwrap();
        let error = list_block_devices_at(fixture.sysfs(), fixture.dev()).unwrap_err();
        assert!(
            matches!(error, ProbeError::ReadDir { ref path, .. } if *path == fixture.sysfs().join("block"))
        );
    }

    #[test]
    fn summary_line() {
        let fixture = Fixture::new();
        sata_disk(&fixture);
        let device = list(&fixture).remove(0);
        assert_eq!(
            device.summary(),
            format!(
                "sda size=64.0MiB kind=disk model=\"QEMU HARDDISK\" serial=QM00001 removable=no \
                 fs=- label=- uuid=-; sda1 size=1.0MiB fs=vfat label=BOOT uuid={FAT_UUID}; \
                 sda2 size=4.0MiB fs=ext4 label=data uuid={EXT4_UUID}"
            )
        );
    }

    #[test]
    fn block_devices_serialize_as_stable_json() {
        let fixture = Fixture::new();
        sata_disk(&fixture);
        let device = list(&fixture).remove(0);
        let json = serde_json::to_value(&device).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "sda",
                "kind": "disk",
                "size_bytes": 67_108_864,
                "vendor": "ATA",
                "model": "QEMU HARDDISK",
                "serial": "QM00001",
                "removable": false,
                "rotational": true,
                "read_only": false,
                "is_virtual": false,
                "backing_file": null,
                "partition_table": null,
                "fs_type": null,
                "label": null,
                "uuid": null,
                "partitions": [
                    {
                        "name": "sda1",
                        "number": 1,
                        "start_bytes": 1_048_576,
                        "size_bytes": 1_048_576,
                        "read_only": false,
                        "fs_type": "vfat",
                        "label": "BOOT",
                        "uuid": FAT_UUID
                    },
                    {
                        "name": "sda2",
                        "number": 2,
                        "start_bytes": 2_097_152,
                        "size_bytes": 4_194_304,
                        "read_only": false,
                        "fs_type": "ext4",
                        "label": "data",
                        "uuid": EXT4_UUID
                    }
                ],
                "issues": []
            })
        );
    }
}
