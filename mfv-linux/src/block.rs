//! Block devices: their nodes, and whether a CD/DVD drive holds a disc.
//!
//! sysfs lists a device by its kernel name, in which `/` is written `!` (`cciss!c0d0`); its
//! node is that name with the `/` put back, under the dev root.
//!
//! sysfs cannot say whether a CD/DVD drive holds a disc: the sr driver gives an empty drive a
//! placeholder size (1 GiB), and reading it fails, after a wait (a tenth of a second under
//! emulation), with an error that looks like a broken drive. The drive is asked instead with
//! the CDROM_DRIVE_STATUS ioctl on a non-blocking open, which reads nothing.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// The block major number of SCSI CD/DVD drives (`sr*`): SATA, USB and emulated IDE drives all
/// appear as one (`Documentation/admin-guide/devices.txt`).
pub const SCSI_CDROM_MAJOR: u64 = 11;

/// `CDSL_CURRENT` of `<linux/cdrom.h>`: the slot in use, for CDROM_DRIVE_STATUS.
const CDSL_CURRENT: nix::libc::c_int = nix::libc::c_int::MAX;
/// CDROM_DRIVE_STATUS answers: no disc in the drive.
const CDS_NO_DISC: nix::libc::c_int = 1;
/// CDROM_DRIVE_STATUS answers: the tray is open.
const CDS_TRAY_OPEN: nix::libc::c_int = 2;

nix::ioctl_write_int_bad!(
    /// CDROM_DRIVE_STATUS: whether the drive's slot holds a disc (`CDS_*`).
    cdrom_drive_status,
    0x5326
);

/// The device node of the block device the kernel calls `name`, under `dev_root` (`/dev`):
/// `cciss!c0d0` is `<dev_root>/cciss/c0d0`.
pub fn device_node(dev_root: &Path, name: &str) -> PathBuf {
    dev_root.join(name.replace('!', "/"))
}

/// Whether the CD/DVD drive at `node` holds a disc (see the [module documentation](self)).
/// A drive that cannot tell, or whose disc is not ready yet, counts as holding one: the read
/// that follows reports what is wrong. Fails when the node cannot be opened or is not a CD/DVD
/// drive.
pub fn optical_drive_has_disc(node: &Path) -> io::Result<bool> {
    let drive = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits() | OFlag::O_CLOEXEC.bits())
        .open(node)?;
    // SAFETY: the descriptor is open for the call, and the ioctl takes an integer, no memory.
    let status = unsafe { cdrom_drive_status(drive.as_raw_fd(), CDSL_CURRENT) }?;
    Ok(!matches!(status, CDS_NO_DISC | CDS_TRAY_OPEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_is_not_a_cd_drive_is_an_error() {
        let error = optical_drive_has_disc(Path::new("/dev/null")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(nix::libc::ENOTTY), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let error = optical_drive_has_disc(&dir.path().join("sr0")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_bang_in_the_kernel_name_is_a_directory() {
        assert_eq!(
            device_node(Path::new("/dev"), "sda1"),
            Path::new("/dev/sda1")
        );
        assert_eq!(
            device_node(Path::new("/tmp/dev"), "cciss!c0d0p1"),
            Path::new("/tmp/dev/cciss/c0d0p1")
        );
    }
}
