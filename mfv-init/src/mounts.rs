//! The early mounts (/proc, /sys, /dev, /dev/pts, /dev/shm, /run, /tmp) and the reader of
//! /proc/self/mountinfo that makes them idempotent.

use std::path::{Path, PathBuf};

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
    std::fs::read_to_string(proc_dir.join("self/mountinfo"))
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default()
}

/// The mount point (fifth field) of each mountinfo line, with octal escapes decoded.
pub fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_octal(field)))
        .collect()
}

/// Decodes the kernel's `\ooo` escapes (space, tab, newline, backslash) in mountinfo.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = bytes.get(index + 1..index + 4).filter(|digits| {
            bytes[index] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match escape {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                // Three octal digits can exceed a byte (\777); keep such text as it is.
                match u8::try_from(value) {
                    Ok(byte) => out.push(byte),
                    Err(_) => out.extend_from_slice(&bytes[index..index + 4]),
                }
                index += 4;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mountinfo: &str, expected: &[&str]) {
        let points = parse_mountinfo(mountinfo);
        let points: Vec<&str> = points.iter().filter_map(|p| p.to_str()).collect();
        assert_eq!(points, expected, "mountinfo: {mountinfo:?}");
    }

    #[test]
    fn mount_points_from_mountinfo() {
        check("", &[]);
        check(
            "1 0 0:2 / / rw - rootfs rootfs rw\n\
             22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n\
             36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
            &["/", "/proc", "/mnt2"],
        );
        check(
            "40 1 0:33 / /media/my\\040stick rw - vfat /dev/sdb1 rw\n",
            &["/media/my stick"],
        );
        check("40 1 0:33 / /a\\134b\\011c rw - x y rw\n", &["/a\\b\tc"]);
        check(
            "40 1 0:33 / /odd\\777\\04 rw - x y rw\n",
            &["/odd\\777\\04"],
        );
        check("short line\n", &[]);
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
