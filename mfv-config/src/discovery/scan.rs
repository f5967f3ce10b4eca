//! Finding volumes by label, UUID or GPT partition name: every block device and partition
//! listed in `<sysfs>/class/block`, its node under the dev root probed read-only with libblkid.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use mfv_linux::blkid::{Signature, SignatureError, probe_signature};
pub use mfv_linux::block::device_node;
use serde::Serialize;

use super::medium::AskedDrive;

/// Whether the file system label of `signature` is `wanted`. Labels compare exactly, except
/// on FAT (`vfat`), whose labels are conventionally upper case (`mkfs.vfat -n MFV-CONFIG`):
/// there they compare ASCII case-insensitively, so `mfv-config` finds `MFV-CONFIG`.
pub fn label_matches(signature: &Signature, wanted: &str) -> bool {
    let Some(label) = &signature.label else {
        return false;
    };
    label == wanted
        || (signature.fs_type.as_deref() == Some("vfat") && label.eq_ignore_ascii_case(wanted))
}

/// Whether the file system UUID of `signature` is `wanted`, ignoring ASCII case (UUIDs and
/// FAT volume ids are hexadecimal).
pub fn uuid_matches(signature: &Signature, wanted: &str) -> bool {
    signature
        .uuid
        .as_deref()
        .is_some_and(|uuid| uuid.eq_ignore_ascii_case(wanted))
}

/// One block device or partition found by [`scan_volumes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Kernel name, e.g. `sdb1`, `loop3`, `nvme0n1p2`.
    pub name: String,
    /// The device node under the dev root.
    pub device: PathBuf,
    /// Whether it is a partition (its sysfs entry has a `partition` attribute).
    pub is_partition: bool,
    /// The GPT partition name (`PARTNAME` in the partition's `uevent`).
    pub part_label: Option<String>,
    /// What libblkid found on it.
    pub signature: Signature,
}

/// A device the scan could not read; the scan goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanIssue {
    /// The sysfs entry or device node concerned.
    pub path: PathBuf,
    /// What went wrong, naming the path, with every cause.
    pub message: String,
}

/// The result of one [`scan_volumes`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VolumeScan {
    /// Every device and partition with a size other than 0, by kernel name.
    pub volumes: Vec<Volume>,
    /// What could not be read.
    pub issues: Vec<ScanIssue>,
}

/// Lists `<sysfs_root>/class/block` (whole devices and partitions alike, sorted by name) and
/// probes `<dev_root>/<name>` of each entry whose `size` is not 0; a floppy or CD/DVD drive
/// (its `dev` attribute has major 2 or 11), whose size says nothing, only when the drive holds
/// a disk (see [each candidate](crate::discovery#each-candidate)), so an empty drive is never
/// read. Never fails: an unlistable directory, an unreadable attribute or an unprobeable node
/// becomes a [`ScanIssue`].
pub fn scan_volumes(sysfs_root: &Path, dev_root: &Path) -> VolumeScan {
    let class_dir = sysfs_root.join("class/block");
    let mut scan = VolumeScan::default();
    let mut names = match fs::read_dir(&class_dir).and_then(|entries| {
        entries
            .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<Vec<_>>>()
    }) {
        Ok(names) => names,
        Err(error) => {
            scan.issues.push(ScanIssue {
                message: format!("cannot list {}: {error}", class_dir.display()),
                path: class_dir,
            });
            return scan;
        }
    };
    names.sort();
    for name in names {
        let entry = class_dir.join(&name);
        let device = device_node(dev_root, &name);
        if let Some(drive) = asked_drive(&entry) {
            match drive.holds_medium(&device) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) if super::medium::means_no_medium(&error) => continue,
                Err(error) => {
                    scan.issues.push(ScanIssue {
                        message: format!("cannot poll {}: {error}", device.display()),
                        path: device,
                    });
                    continue;
                }
            }
        } else {
            match read_size(&entry.join("size")) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(issue) => {
                    scan.issues.push(issue);
                    continue;
                }
            }
        }
        let is_partition = entry.join("partition").exists();
        let part_label = if is_partition {
            match partition_name(&entry.join("uevent")) {
                Ok(label) => label,
                Err(issue) => {
                    scan.issues.push(issue);
                    None
                }
            }
        } else {
            None
        };
        match probe_signature(&device) {
            Ok(signature) => scan.volumes.push(Volume {
                name,
                device,
                is_partition,
                part_label,
                signature,
            }),
            Err(error) => scan.issues.push(ScanIssue {
                path: device,
                message: mfv_linux::error_chain(&error),
            }),
        }
    }
    scan
}

/// The drive to ask for its medium the `class/block` entry is, by the major of its `dev`
/// attribute (`MAJOR:MINOR`): a floppy or CD/DVD drive.
fn asked_drive(entry: &Path) -> Option<AskedDrive> {
    let text = fs::read_to_string(entry.join("dev")).ok()?;
    let major = text.trim().split_once(':')?.0.parse().ok()?;
    AskedDrive::of_major(major)
}

/// Reads a `size` attribute (in 512-byte sectors; only 0 matters here).
fn read_size(path: &Path) -> Result<u64, ScanIssue> {
    let text = fs::read_to_string(path).map_err(|error| ScanIssue {
        path: path.to_owned(),
        message: format!("cannot read {}: {error}", path.display()),
    })?;
    text.trim().parse().map_err(|_| ScanIssue {
        path: path.to_owned(),
        message: format!(
            "{}: unexpected value {:?}, expected a size in sectors",
            path.display(),
            text.trim()
        ),
    })
}

/// The `PARTNAME=` value of a partition's `uevent` file: the kernel sets it to the GPT
/// partition name when there is one.
fn partition_name(uevent: &Path) -> Result<Option<String>, ScanIssue> {
    let text = fs::read_to_string(uevent).map_err(|error| ScanIssue {
        path: uevent.to_owned(),
        message: format!("cannot read {}: {error}", uevent.display()),
    })?;
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix("PARTNAME="))
        .filter(|name| !name.is_empty())
        .map(str::to_owned))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::process::Command;

    use super::*;

    /// A sysfs root and a dev root in a temp dir; device nodes are image files.
    pub(crate) struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        pub(crate) fn new() -> Self {
            let fixture = Fixture {
                dir: tempfile::tempdir().unwrap(),
            };
            fs::create_dir_all(fixture.sysfs().join("class/block")).unwrap();
            fs::create_dir_all(fixture.dev()).unwrap();
            fixture
        }

        pub(crate) fn sysfs(&self) -> PathBuf {
            self.dir.path().join("sys")
        }

        pub(crate) fn dev(&self) -> PathBuf {
            self.dir.path().join("dev")
        }

        pub(crate) fn root(&self) -> &Path {
            self.dir.path()
        }

        /// The messages of the scan's issues, with paths relative to the fixture's root.
        pub(crate) fn issue_messages(&self, scan: &VolumeScan) -> Vec<String> {
            let root = format!("{}/", self.root().display());
            scan.issues
                .iter()
                .map(|issue| issue.message.replace(&root, ""))
                .collect()
        }

        /// A `class/block` entry with a size in sectors; a partition when `uevent` is given
        /// (the content of its `uevent` file).
        pub(crate) fn entry(&self, name: &str, sectors: u64, uevent: Option<&str>) -> PathBuf {
            let entry = self.sysfs().join("class/block").join(name);
            fs::create_dir_all(&entry).unwrap();
            fs::write(entry.join("size"), format!("{sectors}\n")).unwrap();
            if let Some(uevent) = uevent {
                fs::write(entry.join("partition"), "1\n").unwrap();
                fs::write(entry.join("uevent"), uevent).unwrap();
            }
            entry
        }

        /// A device node holding a file system made by `mkfs` with `args`.
        pub(crate) fn formatted_node(&self, name: &str, mkfs: &str, args: &[&str]) -> PathBuf {
            let node = device_node(&self.dev(), name);
            fs::create_dir_all(node.parent().unwrap()).unwrap();
            fs::File::create(&node).unwrap().set_len(4 << 20).unwrap();
            let output = Command::new(mkfs).args(args).arg(&node).output().unwrap();
            assert!(output.status.success(), "{mkfs}: {output:?}");
            node
        }

        /// A device node of zeros.
        pub(crate) fn blank_node(&self, name: &str) -> PathBuf {
            let node = device_node(&self.dev(), name);
            fs::File::create(&node).unwrap().set_len(1 << 20).unwrap();
            node
        }
    }

    /// A disk `vdb` with partitions `vdb1` (ext4 `mfv-config`, GPT name `config`) and `vdb2`
    /// (vfat `MFV-CONFIG`), plus `sda` (no file system) and empty `loop0`/`sr0`.
    pub(crate) fn disk_with_partitions(fixture: &Fixture) {
        fixture.entry("vdb", 16384, None);
        fixture.blank_node("vdb");
        fixture.entry(
            "vdb1",
            8192,
            Some(
                "MAJOR=254\nMINOR=17\nDEVNAME=vdb1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=config\n",
            ),
        );
        fixture.formatted_node(
            "vdb1",
            "mkfs.ext4",
            &["-q", "-F", "-L", "mfv-config", "-U", EXT4_UUID],
        );
        fixture.entry("vdb2", 8192, Some("DEVTYPE=partition\nPARTN=2\n"));
        fixture.formatted_node("vdb2", "mkfs.vfat", &["-n", "MFV-CONFIG", "-i", "1234ABCD"]);
        fixture.entry("sda", 2048, None);
        fixture.blank_node("sda");
        fixture.entry("loop0", 0, None);
        fixture.entry("sr0", 0, None);
    }

    pub(crate) const EXT4_UUID: &str = "0b6f2c4e-8d1a-4f5b-9c3e-2a7d6e1f0a9b";

    #[test]
    fn scans_disks_and_partitions_from_class_block() {
        let fixture = Fixture::new();
        disk_with_partitions(&fixture);
        let scan = scan_volumes(&fixture.sysfs(), &fixture.dev());
        assert!(scan.issues.is_empty(), "{:?}", scan.issues);
        let summary: Vec<_> = scan
            .volumes
            .iter()
            .map(|volume| {
                (
                    volume.name.as_str(),
                    volume.is_partition,
                    volume.part_label.as_deref(),
                    volume.signature.fs_type.as_deref(),
                    volume.signature.label.as_deref(),
                    volume.signature.uuid.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("sda", false, None, None, None, None),
                ("vdb", false, None, None, None, None),
                (
                    "vdb1",
                    true,
                    Some("config"),
                    Some("ext4"),
                    Some("mfv-config"),
                    Some(EXT4_UUID)
                ),
                (
                    "vdb2",
                    true,
                    None,
                    Some("vfat"),
                    Some("MFV-CONFIG"),
                    Some("1234-ABCD")
                ),
            ]
        );
        assert_eq!(scan.volumes[2].device, fixture.dev().join("vdb1"));
    }

    #[test]
    fn unreadable_entries_are_issues_and_the_scan_goes_on() {
        let fixture = Fixture::new();
        disk_with_partitions(&fixture);
        fs::remove_file(fixture.dev().join("sda")).unwrap();
        let vdb = fixture.sysfs().join("class/block/vdb");
        fs::write(vdb.join("size"), "many\n").unwrap();
        fs::remove_file(fixture.sysfs().join("class/block/vdb2/uevent")).unwrap();
        fixture.entry("nosize", 8, None);
        fs::remove_file(fixture.sysfs().join("class/block/nosize/size")).unwrap();

        let scan = scan_volumes(&fixture.sysfs(), &fixture.dev());
        assert_eq!(
            fixture.issue_messages(&scan),
            [
                "cannot read sys/class/block/nosize/size: No such file or directory (os error 2)",
                "cannot open dev/sda read-only: No such file or directory (os error 2)",
                "sys/class/block/vdb/size: unexpected value \"many\", expected a size in sectors",
                "cannot read sys/class/block/vdb2/uevent: No such file or directory (os error 2)",
            ]
        );
        let names: Vec<&str> = scan.volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["vdb1", "vdb2"]);
        assert_eq!(
            scan.volumes[1].signature.label.as_deref(),
            Some("MFV-CONFIG")
        );
    }

    #[test]
    fn missing_class_block_is_one_issue() {
        let fixture = Fixture::new();
        fs::remove_dir_all(fixture.sysfs().join("class/block")).unwrap();
        let scan = scan_volumes(&fixture.sysfs(), &fixture.dev());
        assert!(scan.volumes.is_empty());
        assert_eq!(scan.issues.len(), 1);
        assert!(
            scan.issues[0].message.starts_with(&format!(
                "cannot list {}: No such file",
                fixture.sysfs().join("class/block").display()
            )),
            "{:?}",
            scan.issues
        );
    }

    #[test]
    fn bang_in_a_name_is_a_subdirectory_of_dev() {
        let fixture = Fixture::new();
        fixture.entry("cciss!c0d0", 8192, None);
        fixture.formatted_node("cciss!c0d0", "mkfs.vfat", &["-n", "RAID"]);
        let scan = scan_volumes(&fixture.sysfs(), &fixture.dev());
        assert_eq!(scan.volumes[0].device, fixture.dev().join("cciss/c0d0"));
        assert_eq!(scan.volumes[0].signature.label.as_deref(), Some("RAID"));
    }

    #[test]
    fn ambiguous_and_unprobeable_nodes() {
        let fixture = Fixture::new();
        // A FAT volume with an ext4 superblock written over its reserved sectors.
        let both = fixture.formatted_node("vdc", "mkfs.vfat", &["-n", "TWO"]);
        let ext4 = fixture.formatted_node("ext4-image", "mkfs.ext4", &["-q", "-F"]);
        let superblock = fs::read(&ext4).unwrap()[1024..2048].to_vec();
        let mut image = fs::read(&both).unwrap();
        image[1024..2048].copy_from_slice(&superblock);
        fs::write(&both, image).unwrap();
        let error = probe_signature(&both).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}: libblkid found more than one file system signature",
                both.display()
            )
        );
        let directory = fixture.dev().join("vdd");
        fs::create_dir(&directory).unwrap();
        let error = probe_signature(&directory).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("libblkid cannot probe {}", directory.display())
        );
        assert_eq!(
            probe_signature(&fixture.blank_node("vde")).unwrap(),
            Signature::default()
        );
    }

    #[test]
    fn a_floppy_drive_is_asked_for_its_disk_and_never_probed_blindly() {
        let fixture = Fixture::new();
        // Size 8: what any open leaves behind, disk or not; the size does not decide.
        let fd0 = fixture.entry("fd0", 8, None);
        fs::write(fd0.join("dev"), "2:0\n").unwrap();
        // An image file is no floppy drive: the poll is refused, and it is not probed.
        fixture.formatted_node("fd0", "mkfs.vfat", &["-n", "FLOPPY"]);
        // A size of 0 does not skip a floppy drive either.
        let fd1 = fixture.entry("fd1", 0, None);
        fs::write(fd1.join("dev"), "2:1\n").unwrap();
        let scan = scan_volumes(&fixture.sysfs(), &fixture.dev());
        assert!(scan.volumes.is_empty(), "{:?}", scan.volumes);
        assert_eq!(
            fixture.issue_messages(&scan),
            [
                "cannot poll dev/fd0: Inappropriate ioctl for device (os error 25)",
                "cannot poll dev/fd1: No such file or directory (os error 2)",
            ]
        );
        assert_eq!(asked_drive(&fixture.entry("sda", 8, None)), None);
        fs::write(fixture.sysfs().join("class/block/sda/dev"), "8:0\n").unwrap();
        assert_eq!(asked_drive(&fixture.sysfs().join("class/block/sda")), None);
    }

    #[test]
    fn label_and_uuid_matching() {
        let signature = |fs_type: &str, label: &str, uuid: &str| Signature {
            fs_type: Some(fs_type.into()),
            label: Some(label.into()),
            uuid: Some(uuid.into()),
            partition_table: None,
        };
        let fat = signature("vfat", "MFV-CONFIG", "1234-ABCD");
        assert!(label_matches(&fat, "mfv-config"));
        assert!(label_matches(&fat, "MFV-CONFIG"));
        assert!(!label_matches(&fat, "mfv-confi"));
        assert!(uuid_matches(&fat, "1234-abcd"));
        assert!(!uuid_matches(&fat, "1234-ABCE"));
        let ext4 = signature("ext4", "MFV-CONFIG", EXT4_UUID);
        assert!(!label_matches(&ext4, "mfv-config"));
        assert!(label_matches(&ext4, "MFV-CONFIG"));
        assert!(uuid_matches(&ext4, &EXT4_UUID.to_uppercase()));
        assert!(!label_matches(&Signature::default(), "mfv-config"));
        assert!(!uuid_matches(&Signature::default(), ""));
    }
}
