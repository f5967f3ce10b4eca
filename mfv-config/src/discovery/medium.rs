//! Whether a drive holds a medium, asked without reading it, so that an empty drive is
//! "absent (no medium)" and never an I/O error.
//!
//! Most drivers say it in sysfs: a block device of size 0 has no medium (an empty card reader,
//! an unattached loop device). The CD/DVD driver does not: it gives an empty drive a
//! placeholder size, so a CD/DVD drive (block major 11) is asked with CDROM_DRIVE_STATUS
//! ([`mfv_linux::block::optical_drive_has_disc`]). Nor does the floppy driver: its size is 0 until the device is
//! opened, whatever is in the drive, and any open sets it to a placeholder (8 sectors) that
//! stays after an empty drive was opened. Reading an empty floppy drive, which a blocking open
//! does to detect the disk's format, makes the kernel log `I/O error, dev fd0, sector 0` on
//! the console. So a floppy drive (block major 2) is asked with the driver's
//! `FDPOLLDRVSTAT` ioctl on a non-blocking open, which checks the drive's disk-change line
//! after a seek and reads nothing: a disk is in the drive when the line cleared, i.e. neither
//! `FD_VERIFY` nor `FD_DISK_NEWCHANGE` stays set. Only then is the drive opened blocking, so
//! the driver detects the format and the size is right for libblkid and mount.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use mfv_linux::block::SCSI_CDROM_MAJOR;
use nix::errno::Errno;
use nix::fcntl::OFlag;

/// The block major number of floppy drives (`Documentation/admin-guide/devices.txt`).
pub(super) const FLOPPY_MAJOR: u64 = 2;

/// `FD_VERIFY` in `struct floppy_drive_struct`'s flags (`<linux/fd.h>`): the disk-change
/// line was active at the last check.
const FD_VERIFY: u64 = 1 << 1;
/// `FD_DISK_NEWCHANGE`: a disk change was detected and nothing done since.
const FD_DISK_NEWCHANGE: u64 = 1 << 2;

/// `struct floppy_drive_struct` of `<linux/fd.h>` on a 64-bit kernel: `flags` first, then
/// fields this module does not read (80 bytes in all).
#[repr(C)]
#[derive(Debug, Default)]
struct FloppyDriveState {
    flags: u64,
    rest: [u64; 9],
}

// FDPOLLDRVSTAT = _IOR(2, 0x13, struct floppy_drive_struct).
nix::ioctl_read!(floppy_poll_drive_state, 2, 0x13, FloppyDriveState);

/// A drive whose size says nothing of its medium, so it is asked: a floppy drive
/// ([`floppy_has_disk`]) or a CD/DVD drive, whose driver gives an empty drive a placeholder
/// size ([`mfv_linux::block::optical_drive_has_disc`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AskedDrive {
    /// Block major 2.
    Floppy,
    /// Block major 11 (`sr*`).
    Optical,
}

impl AskedDrive {
    /// The drive of block major `major`, when it is one to ask.
    pub(super) fn of_major(major: u64) -> Option<AskedDrive> {
        match major {
            FLOPPY_MAJOR => Some(AskedDrive::Floppy),
            SCSI_CDROM_MAJOR => Some(AskedDrive::Optical),
            _ => None,
        }
    }

    /// Whether the drive at `device` holds a medium, asked without reading it.
    pub(super) fn holds_medium(self, device: &Path) -> io::Result<bool> {
        match self {
            AskedDrive::Floppy => floppy_has_disk(device),
            AskedDrive::Optical => mfv_linux::block::optical_drive_has_disc(device),
        }
    }
}

/// Whether the block device with device number `rdev` (node `device`) has no medium: a
/// floppy or CD/DVD drive when asking it ([`AskedDrive::holds_medium`]) says no, any other
/// device when its sysfs `size` (found by number under `<sysfs_root>/dev/block`) is 0.
/// Anything that cannot be read counts as "has a medium": the probe that follows reports the
/// problem.
pub(super) fn has_no_medium(sysfs_root: &Path, device: &Path, rdev: u64) -> bool {
    has_no_medium_with(sysfs_root, device, rdev, AskedDrive::holds_medium)
}

/// [`has_no_medium`] with the question to a drive as a parameter.
fn has_no_medium_with(
    sysfs_root: &Path,
    device: &Path,
    rdev: u64,
    ask: impl FnOnce(AskedDrive, &Path) -> io::Result<bool>,
) -> bool {
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    if let Some(drive) = AskedDrive::of_major(major) {
        return match ask(drive, device) {
            Ok(has_medium) => !has_medium,
            Err(error) => means_no_medium(&error),
        };
    }
    let size = sysfs_root.join(format!("dev/block/{major}:{minor}/size"));
    fs::read_to_string(size).is_ok_and(|text| text.trim() == "0")
}

/// Whether an error opening a drive says that it is empty (or that the drive is not there).
pub(super) fn means_no_medium(error: &io::Error) -> bool {
    error.raw_os_error().is_some_and(|code| {
        [Errno::ENXIO, Errno::ENODEV, Errno::ENOMEDIUM].contains(&Errno::from_raw(code))
    })
}

/// Whether the floppy drive `device` holds a disk (see the [module documentation](self));
/// when it does, the drive has also been opened once, blocking, so its size is known.
pub(super) fn floppy_has_disk(device: &Path) -> io::Result<bool> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits() | OFlag::O_CLOEXEC.bits())
        .open(device)?;
    let mut state = FloppyDriveState::default();
    // SAFETY: `file` is an open descriptor for the whole call, and `state` is a writable
    // `struct floppy_drive_struct` of the size the ioctl number encodes (80 bytes), which is
    // all the kernel writes.
    unsafe { floppy_poll_drive_state(file.as_raw_fd(), &mut state) }.map_err(io::Error::from)?;
    drop(file);
    if !disk_in_drive(state.flags) {
        return Ok(false);
    }
    OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_CLOEXEC.bits())
        .open(device)
        .map(|_| true)
}

/// Whether the flags `FDPOLLDRVSTAT` returned say that a disk is in the drive.
fn disk_in_drive(flags: u64) -> bool {
    flags & (FD_VERIFY | FD_DISK_NEWCHANGE) == 0
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn drive_flags_as_the_kernel_reports_them() {
        // Seen on QEMU's floppy controller: a writable disk before and after the first read,
        // a write-protected disk, and an empty drive on its first and later polls.
        assert!(disk_in_drive(0x30));
        assert!(disk_in_drive(0x20));
        assert!(disk_in_drive(0x10));
        assert!(!disk_in_drive(0x12));
        assert!(!disk_in_drive(0x14));
        assert_eq!(std::mem::size_of::<FloppyDriveState>(), 80);
    }

    fn rdev(major: u64, minor: u64) -> u64 {
        nix::sys::stat::makedev(major, minor)
    }

    /// A sysfs root where device 8:1 has `size`.
    fn sysfs(size: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("dev/block/8:1");
        fs::create_dir_all(&entry).unwrap();
        fs::write(entry.join("size"), size).unwrap();
        dir
    }

    #[test]
    fn a_floppy_drive_is_asked_and_never_judged_by_its_size() {
        let root = sysfs("0\n");
        let node = Path::new("/dev/fd0");
        let asked = Cell::new(None::<PathBuf>);
        let answer = |result: io::Result<bool>| {
            let asked = &asked;
            move |drive: AskedDrive, device: &Path| {
                assert_eq!(drive, AskedDrive::Floppy);
                asked.set(Some(device.to_owned()));
                result
            }
        };
        // The sysfs size of 2:0 is unknown here: only the answer counts.
        assert!(!has_no_medium_with(
            root.path(),
            node,
            rdev(2, 0),
            answer(Ok(true))
        ));
        assert_eq!(asked.take().as_deref(), Some(node));
        assert!(has_no_medium_with(
            root.path(),
            node,
            rdev(2, 0),
            answer(Ok(false))
        ));
        for errno in [Errno::ENXIO, Errno::ENODEV, Errno::ENOMEDIUM] {
            let error = io::Error::from_raw_os_error(errno as i32);
            assert!(has_no_medium_with(
                root.path(),
                node,
                rdev(2, 0),
                answer(Err(error))
            ));
        }
        // Any other failure: the probe that follows reports it.
        let error = io::Error::from_raw_os_error(Errno::EIO as i32);
        assert!(!has_no_medium_with(
            root.path(),
            node,
            rdev(2, 0),
            answer(Err(error))
        ));
    }

    #[test]
    fn other_devices_are_judged_by_their_sysfs_size() {
        let never = |_: AskedDrive, _: &Path| -> io::Result<bool> { panic!("not a drive to ask") };
        let node = Path::new("/dev/sda1");
        assert!(has_no_medium_with(
            sysfs("0\n").path(),
            node,
            rdev(8, 1),
            never
        ));
        assert!(!has_no_medium_with(
            sysfs("2880\n").path(),
            node,
            rdev(8, 1),
            never
        ));
        // No sysfs entry: unknown, so "has a medium".
        assert!(!has_no_medium_with(
            sysfs("0\n").path(),
            node,
            rdev(8, 2),
            never
        ));
    }

    #[test]
    fn a_cd_drive_is_asked_and_never_judged_by_its_placeholder_size() {
        // The size of an empty sr drive: 1 GiB.
        let root = sysfs("2097152\n");
        let answer = |has_disc: bool| {
            move |drive: AskedDrive, _: &Path| {
                assert_eq!(drive, AskedDrive::Optical);
                Ok(has_disc)
            }
        };
        let node = Path::new("/dev/sr0");
        assert!(has_no_medium_with(
            root.path(),
            node,
            rdev(11, 0),
            answer(false)
        ));
        assert!(!has_no_medium_with(
            root.path(),
            node,
            rdev(11, 0),
            answer(true)
        ));
        assert_eq!(AskedDrive::of_major(8), None);
    }

    #[test]
    fn a_node_that_is_not_a_floppy_drive_fails_the_poll() {
        // /dev/null is a character device: the floppy ioctl is refused, not misread.
        let error = floppy_has_disk(Path::new("/dev/null")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(Errno::ENOTTY as i32), "{error}");
        let error = floppy_has_disk(Path::new("/nonexistent/fd0")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
