//! The early mounts (/proc, /sys, /dev, /dev/pts, /dev/shm, /run, /tmp) and the reader of
//! /proc/self/mountinfo that makes them idempotent.

use std::path::{Path, PathBuf};

use mfv_linux::mountinfo;
use nix::mount::MsFlags;

/// One mount: what `mount(2)` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountSpec {
    /// The source (for pseudo file systems, a name shown in mountinfo).
    pub source: &'static str,
    /// The absolute mount point.
    pub target: &'static str,
    /// The file system type.
    pub fstype: &'static str,
    /// Mount flags.
    pub flags: MsFlags,
    /// File system options.
    pub data: Option<&'static str>,
}

const NOSUID_NODEV: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);
const NOSUID_NODEV_NOEXEC: MsFlags = NOSUID_NODEV.union(MsFlags::MS_NOEXEC);

/// The early mounts, in order: each one's mount point lies on an earlier one or on the root.
pub const EARLY_MOUNTS: [MountSpec; 7] = [
    MountSpec {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    MountSpec {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    MountSpec {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: Some("mode=0755"),
    },
    MountSpec {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: Some("mode=0620,ptmxmode=0666"),
    },
    MountSpec {
        source: "shm",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: Some("mode=1777"),
    },
    MountSpec {
        source: "run",
        target: "/run",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: Some("mode=0755"),
    },
    MountSpec {
        source: "tmp",
        target: "/tmp",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: Some("mode=1777"),
    },
];

/// The mount points listed in `<proc_dir>/self/mountinfo`, in mount order. A file that cannot
/// be read (before /proc is mounted) lists nothing.
pub fn mount_points(proc_dir: &Path) -> Vec<PathBuf> {
    mountinfo::read(proc_dir)
        .into_iter()
        .map(|entry| entry.mount_point)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_come_from_mountinfo_in_order_and_decoded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("self")).unwrap();
        std::fs::write(
            dir.path().join("self/mountinfo"),
            "1 0 0:2 / / rw - rootfs rootfs rw\n\
             22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n\
             40 1 0:33 / /media/my\\040stick rw - vfat /dev/sdb1 rw\n",
        )
        .unwrap();
        assert_eq!(
            mount_points(dir.path()),
            [
                PathBuf::from("/"),
                PathBuf::from("/proc"),
                PathBuf::from("/media/my stick")
            ]
        );
    }

    #[test]
    fn unreadable_mountinfo_lists_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(mount_points(dir.path()).is_empty());
    }

    #[test]
    fn early_mounts_are_in_a_safe_order() {
        let targets: Vec<&str> = EARLY_MOUNTS.iter().map(|m| m.target).collect();
        assert_eq!(
            targets,
            [
                "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run", "/tmp"
            ]
        );
        let run = EARLY_MOUNTS.iter().find(|m| m.target == "/run").unwrap();
        assert_eq!(run.data, Some("mode=0755"));
        let tmp = EARLY_MOUNTS.iter().find(|m| m.target == "/tmp").unwrap();
        assert_eq!(tmp.data, Some("mode=1777"));
    }
}
