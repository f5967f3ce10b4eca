//! Making a chosen partition a config volume: an ext4 or vfat file system labelled
//! `mfv-config`, made only when the caller's confirmation names the device exactly.
//!
//! FAT labels are upper case by convention, so a vfat config volume is labelled `MFV-CONFIG`;
//! discovery matches FAT labels case-insensitively (see
//! [`label_matches`](crate::discovery::label_matches)).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde::Serialize;

use mfv_linux::mountinfo;

use crate::discovery::{CONFIG_VOLUME_LABEL, SignatureError, probe_signature};

/// The file system a config volume gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FsKind {
    /// ext4, labelled `mfv-config` (`mkfs.ext4 -q -F -L mfv-config`).
    Ext4,
    /// FAT, labelled `MFV-CONFIG` (`mkfs.vfat -I -n MFV-CONFIG`): readable by any other
    /// operating system.
    Vfat,
}

impl FsKind {
    /// The type libblkid reports for it: `ext4` or `vfat`.
    pub fn as_str(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Vfat => "vfat",
        }
    }

    /// The label it is made with.
    pub fn label(self) -> String {
        match self {
            FsKind::Ext4 => CONFIG_VOLUME_LABEL.to_owned(),
            FsKind::Vfat => CONFIG_VOLUME_LABEL.to_ascii_uppercase(),
        }
    }

    /// The mkfs program and its arguments before the device.
    fn mkfs(self) -> (&'static str, Vec<String>) {
        match self {
            FsKind::Ext4 => (
                "mkfs.ext4",
                vec!["-q".into(), "-F".into(), "-L".into(), self.label()],
            ),
            FsKind::Vfat => ("mkfs.vfat", vec!["-I".into(), "-n".into(), self.label()]),
        }
    }
}

/// The file system [`format_config_volume`] made, as libblkid reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormattedVolume {
    /// The device node.
    pub device: PathBuf,
    /// `ext4` or `vfat`.
    pub fs_type: String,
    /// The label.
    pub label: String,
    /// The new file system's UUID.
    pub uuid: Option<String>,
}

/// Why a config volume was not made.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The confirmation did not name the device.
    #[error("not formatting {}: the confirmation must be the device path exactly, got {confirm:?}", device.display())]
    NotConfirmed {
        /// The device.
        device: PathBuf,
        /// The confirmation given.
        confirm: String,
    },
    /// The device does not exist.
    #[error("{} does not exist", device.display())]
    Missing {
        /// The device.
        device: PathBuf,
    },
    /// The device could not be examined.
    #[error("cannot read {}", device.display())]
    Stat {
        /// The device.
        device: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The path is not a block device.
    #[error("{} is not a block device", device.display())]
    NotABlockDevice {
        /// The path.
        device: PathBuf,
    },
    /// The device (or a partition of it) is mounted.
    #[error("{} is mounted on {}", device.display(), mount_point.display())]
    Mounted {
        /// The device, or its mounted partition.
        device: PathBuf,
        /// Where it is mounted.
        mount_point: PathBuf,
    },
    /// The mount table could not be read.
    #[error("cannot read the mount table {}", path.display())]
    MountTable {
        /// `<proc>/self/mountinfo`.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The mkfs program could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// mkfs failed.
    #[error("{program} failed on {} ({status}): {stderr}", device.display())]
    Mkfs {
        /// The program.
        program: String,
        /// The device.
        device: PathBuf,
        /// Its exit status.
        status: ExitStatus,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// The new file system could not be read back.
    #[error("cannot verify the new file system on {}", device.display())]
    Verify {
        /// The device.
        device: PathBuf,
        /// Why probing failed.
        #[source]
        source: SignatureError,
    },
    /// The device does not show the file system that was made.
    #[error("{} shows {found} after formatting, expected {expected}", device.display())]
    Unexpected {
        /// The device.
        device: PathBuf,
        /// What was expected (`ext4 label mfv-config`).
        expected: String,
        /// What libblkid found.
        found: String,
    },
}

/// [`format_config_volume_at`] with the mount table of this system (`/proc`).
pub fn format_config_volume(
    device: &Path,
    kind: FsKind,
    confirm: &str,
) -> Result<FormattedVolume, FormatError> {
    format_config_volume_at(Path::new("/proc"), device, kind, confirm)
}

/// Makes `device` a config volume of `kind`, only when `confirm` is the device path exactly
/// (as given, e.g. `/dev/sdb2`). Refuses a missing device, anything that is not a block
/// device, and a device that is mounted (or a partition of which is mounted) according to
/// `<proc_root>/self/mountinfo`. Runs mkfs, then reads the device back with libblkid and
/// checks the file system type and label.
pub fn format_config_volume_at(
    proc_root: &Path,
    device: &Path,
    kind: FsKind,
    confirm: &str,
) -> Result<FormattedVolume, FormatError> {
    if confirm != device.as_os_str() {
        return Err(FormatError::NotConfirmed {
            device: device.to_owned(),
            confirm: confirm.to_owned(),
        });
    }
    let metadata = fs::metadata(device).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => FormatError::Missing {
            device: device.to_owned(),
        },
        _ => FormatError::Stat {
            device: device.to_owned(),
            source,
        },
    })?;
    if !metadata.file_type().is_block_device() {
        return Err(FormatError::NotABlockDevice {
            device: device.to_owned(),
        });
    }
    let mountinfo = proc_root.join("self/mountinfo");
    let table = fs::read_to_string(&mountinfo).map_err(|source| FormatError::MountTable {
        path: mountinfo.clone(),
        source,
    })?;
    let number = (
        nix::sys::stat::major(metadata.rdev()),
        nix::sys::stat::minor(metadata.rdev()),
    );
    if let Some((mounted, mount_point)) = find_mount(&table, device, number) {
        return Err(FormatError::Mounted {
            device: mounted,
            mount_point,
        });
    }

    let (program, args) = kind.mkfs();
    let output = Command::new(program)
        .args(&args)
        .arg(device)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FormatError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(FormatError::Mkfs {
            program: program.to_owned(),
            device: device.to_owned(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }

    let signature = probe_signature(device).map_err(|source| FormatError::Verify {
        device: device.to_owned(),
        source,
    })?;
    let label = kind.label();
    if signature.fs_type.as_deref() != Some(kind.as_str())
        || signature.label.as_deref() != Some(label.as_str())
    {
        return Err(FormatError::Unexpected {
            device: device.to_owned(),
            expected: format!("{} label {label}", kind.as_str()),
            found: format!(
                "{} label {}",
                signature.fs_type.as_deref().unwrap_or("no file system"),
                signature.label.as_deref().unwrap_or("-")
            ),
        });
    }
    Ok(FormattedVolume {
        device: device.to_owned(),
        fs_type: kind.as_str().to_owned(),
        label,
        uuid: signature.uuid,
    })
}

/// The first mount in a mountinfo table whose device number is `number`, or whose source is
/// `device` or a partition of it (`/dev/sdb` → `/dev/sdb1`, `/dev/nvme0n1` → `/dev/nvme0n1p1`):
/// the mounted source and the mount point.
fn find_mount(table: &str, device: &Path, number: (u64, u64)) -> Option<(PathBuf, PathBuf)> {
    let device_text = device.to_string_lossy();
    mountinfo::parse(table).into_iter().find_map(|entry| {
        let is_partition = entry
            .source
            .strip_prefix(device_text.as_ref())
            .is_some_and(|rest| is_partition_suffix(&device_text, rest));
        (entry.device_number == Some(number) || entry.source == device_text || is_partition)
            .then(|| (PathBuf::from(entry.source), entry.mount_point))
    })
}

/// Whether `suffix` turns the disk name `disk` into a partition name: the kernel appends the
/// number directly (`sdb` → `sdb1`), or after `p` when the disk name ends in a digit
/// (`nvme0n1` → `nvme0n1p1`, `loop1` → `loop1p2`, but `loop10` is another disk).
fn is_partition_suffix(disk: &str, suffix: &str) -> bool {
    let digits = if disk.ends_with(|c: char| c.is_ascii_digit()) {
        suffix.strip_prefix('p')
    } else {
        Some(suffix)
    };
    digits.is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - rootfs rootfs rw
30 22 8:17 / /mnt/usb\\040stick rw,relatime - vfat /dev/sdb1 rw
31 22 259:2 / /data rw - ext4 /dev/nvme0n1p2 rw
32 22 0:45 / /btrfs rw - btrfs /dev/sdc rw
";

    fn mount(device: &str, number: (u64, u64)) -> Option<(PathBuf, PathBuf)> {
        find_mount(MOUNTINFO, Path::new(device), number)
    }

    #[test]
    fn finds_mounts_by_number_source_or_partition() {
        assert_eq!(
            mount("/dev/disk/by-label/USB", (8, 17)),
            Some(("/dev/sdb1".into(), "/mnt/usb stick".into()))
        );
        assert_eq!(
            mount("/dev/sdb", (8, 16)),
            Some(("/dev/sdb1".into(), "/mnt/usb stick".into()))
        );
        assert_eq!(
            mount("/dev/nvme0n1", (259, 0)),
            Some(("/dev/nvme0n1p2".into(), "/data".into()))
        );
        assert_eq!(
            mount("/dev/sdc", (8, 32)),
            Some(("/dev/sdc".into(), "/btrfs".into()))
        );
        assert_eq!(mount("/dev/sdb2", (8, 18)), None);
        assert_eq!(mount("/dev/nvme0n", (259, 9)), None);
        let loops = "40 22 7:10 / /mnt rw - ext4 /dev/loop10 rw\n41 22 7:1 / /m2 rw - ext4 /dev/loop1p1 rw\n";
        assert_eq!(
            find_mount(loops, Path::new("/dev/loop1"), (7, 1)),
            Some(("/dev/loop1p1".into(), "/m2".into()))
        );
        assert_eq!(mount("/dev/sd", (8, 99)), None);
        assert_eq!(
            find_mount("garbage line\n\n", Path::new("/dev/sda"), (8, 0)),
            None
        );
    }

    #[test]
    fn refuses_without_the_exact_confirmation() {
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("disk.img");
        fs::write(&device, vec![0u8; 1 << 20]).unwrap();
        for confirm in ["", "yes", "disk.img", &format!("{}/", device.display())] {
            let error = format_config_volume(&device, FsKind::Ext4, confirm).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "not formatting {}: the confirmation must be the device path exactly, got {confirm:?}",
                    device.display()
                )
            );
        }
        // Nothing was written.
        assert_eq!(fs::read(&device).unwrap(), vec![0u8; 1 << 20]);
    }

    #[test]
    fn refuses_missing_devices_and_non_block_devices() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("sdz9");
        let confirm = missing.to_str().unwrap();
        assert_eq!(
            format_config_volume(&missing, FsKind::Vfat, confirm)
                .unwrap_err()
                .to_string(),
            format!("{} does not exist", missing.display())
        );
        let file = dir.path().join("image");
        fs::write(&file, vec![0u8; 4096]).unwrap();
        assert_eq!(
            format_config_volume(&file, FsKind::Vfat, file.to_str().unwrap())
                .unwrap_err()
                .to_string(),
            format!("{} is not a block device", file.display())
        );
        let through_file = file.join("x");
        assert!(matches!(
            format_config_volume(&through_file, FsKind::Vfat, through_file.to_str().unwrap()),
            Err(FormatError::Stat { .. })
        ));
        assert_eq!(fs::read(&file).unwrap(), vec![0u8; 4096]);
    }

    #[test]
    fn labels_and_programs() {
        assert_eq!(FsKind::Ext4.label(), "mfv-config");
        assert_eq!(FsKind::Vfat.label(), "MFV-CONFIG");
        assert_eq!(FsKind::Vfat.mkfs().0, "mkfs.vfat");
        assert_eq!(
            serde_json::to_value(FsKind::Vfat).unwrap(),
            serde_json::json!("vfat")
        );
    }
}
