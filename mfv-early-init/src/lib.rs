//! The initrd's `/init`, the first program the kernel runs, and the layout it shares with the
//! image build.
//!
//! Why a program before mfv-init: everything the kernel unpacks from the initrd stays in RAM
//! for as long as the host runs, and mfv-init links libvirt (and through it libxml2, ICU,
//! GnuTLS and more), tens of MiB. This program links only libc. It mounts devtmpfs, loads the
//! loop and squashfs modules, mounts the payload (a squashfs kept compressed in RAM and read
//! on demand, holding mfv-init, the kernel modules, libvirt, QEMU and the rest) and executes
//! mfv-init from it, which stays PID 1. If the payload cannot be mounted the host cannot
//! start: it says why and what to do, then halts.

use std::path::{Path, PathBuf};

use mfv_linux::payload::{MountedPayload, PayloadError, PayloadPaths, mount_payload};
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

/// The payload image in the initramfs (the image build stores it uncompressed in the cpio, so
/// the kernel copies it into RAM as one file).
pub const PAYLOAD_IMAGE: &str = "usr/lib/mfv/payload.squashfs";
/// Where the payload is mounted; the early tree's entries for its files are symbolic links
/// into it, so every path stays where a Debian system has it.
pub const PAYLOAD_DIR: &str = "usr/lib/mfv/payload";
/// Where the modules loaded before the payload are, outside it.
pub const EARLY_MODULES_DIR: &str = "usr/lib/mfv/early";
/// mfv-init, executed once the payload is mounted.
pub const MFV_INIT: &str = "usr/sbin/mfv-init";

/// A module the payload's mount needs (loop and squashfs are modules in Debian's kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlyModule {
    /// Its file name in [`EARLY_MODULES_DIR`].
    pub file_name: &'static str,
    /// Its path below the kernel's module directory (`/lib/modules/<release>`).
    pub kernel_path: &'static str,
}

/// The modules loaded before the payload is mounted, in load order.
pub const EARLY_MODULES: [EarlyModule; 2] = [
    EarlyModule {
        file_name: "loop.ko",
        kernel_path: "kernel/drivers/block/loop.ko",
    },
    EarlyModule {
        file_name: "squashfs.ko",
        kernel_path: "kernel/fs/squashfs/squashfs.ko",
    },
];

/// Where the tree is: `/` on the appliance, a fixture directory in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The root of the tree.
    pub root: PathBuf,
}

impl Layout {
    /// The appliance's own tree.
    pub fn system() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }

    /// The device directory devtmpfs goes on.
    pub fn dev_dir(&self) -> PathBuf {
        self.root.join("dev")
    }

    /// mfv-init, as the early tree names it (a symbolic link into the payload).
    pub fn mfv_init(&self) -> PathBuf {
        self.root.join(MFV_INIT)
    }

    /// What [`mount_payload`] needs.
    pub fn payload_paths(&self) -> PayloadPaths {
        PayloadPaths {
            image: self.root.join(PAYLOAD_IMAGE),
            mount_point: self.root.join(PAYLOAD_DIR),
            modules: EARLY_MODULES
                .iter()
                .map(|module| self.root.join(EARLY_MODULES_DIR).join(module.file_name))
                .collect(),
            dev_dir: self.dev_dir(),
        }
    }
}

/// Why the payload could not be joined, or mfv-init in it not executed.
#[derive(Debug, thiserror::Error)]
pub enum EarlyInitError {
    /// devtmpfs, where the loop devices appear, could not be mounted.
    #[error("cannot mount devtmpfs on {path}: {source}")]
    Devtmpfs {
        /// The device directory.
        path: PathBuf,
        /// The kernel's error.
        source: Errno,
    },
    /// The payload could not be mounted.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The payload is mounted but mfv-init in it could not be executed.
    #[error("cannot execute {path}: {source}")]
    Execute {
        /// mfv-init's path.
        path: PathBuf,
        /// The kernel's error.
        source: Errno,
    },
}

/// Mounts devtmpfs (mfv-init finds it mounted and leaves it) and the payload.
pub fn join_payload(layout: &Layout) -> Result<MountedPayload, EarlyInitError> {
    mount_devtmpfs(&layout.dev_dir())?;
    Ok(mount_payload(&layout.payload_paths())?)
}

fn mount_devtmpfs(dev_dir: &Path) -> Result<(), EarlyInitError> {
    mount(
        Some("devtmpfs"),
        dev_dir,
        Some("devtmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    )
    .map_err(|source| EarlyInitError::Devtmpfs {
        path: dev_dir.to_path_buf(),
        source,
    })
}

/// What the console shows when the payload cannot be joined: the error, what it means and
/// what to do.
pub fn failure_message(error: &EarlyInitError, layout: &Layout) -> String {
    format!(
        "cannot start the host: {error}. {} holds mfv-init, the kernel modules, libvirt and \
         QEMU, so nothing can run without it. The boot medium or initrd.img is damaged or \
         incomplete: write the medium again from a freshly built image (or check the PXE \
         server's copy of initrd.img). Halting.",
        layout.root.join(PAYLOAD_IMAGE).display()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn the_payload_paths_lie_below_the_root() {
        let layout = Layout {
            root: PathBuf::from("/fixture"),
        };
        let paths = layout.payload_paths();
        assert_eq!(
            paths.image,
            Path::new("/fixture/usr/lib/mfv/payload.squashfs")
        );
        assert_eq!(paths.mount_point, Path::new("/fixture/usr/lib/mfv/payload"));
        assert_eq!(
            paths.modules,
            [
                Path::new("/fixture/usr/lib/mfv/early/loop.ko"),
                Path::new("/fixture/usr/lib/mfv/early/squashfs.ko"),
            ]
        );
        assert_eq!(paths.dev_dir, Path::new("/fixture/dev"));
        assert_eq!(layout.mfv_init(), Path::new("/fixture/usr/sbin/mfv-init"));
    }

    #[test]
    fn a_missing_device_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: dir.path().to_path_buf(),
        };
        let error = join_payload(&layout).unwrap_err();
        assert!(
            matches!(error, EarlyInitError::Devtmpfs { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("/dev"), "{error}");
    }

    #[test]
    fn a_payload_without_mfv_init_is_named_as_damaged() {
        let layout = Layout::system();
        let error = EarlyInitError::Execute {
            path: layout.mfv_init(),
            source: Errno::ENOENT,
        };
        let message = failure_message(&error, &layout);
        assert!(
            message.contains("cannot execute /usr/sbin/mfv-init: ENOENT"),
            "{message}"
        );
        assert!(message.contains("write the medium again"), "{message}");
    }

    #[test]
    fn the_failure_message_names_the_image_and_what_to_do() {
        let layout = Layout::system();
        let error = EarlyInitError::Payload(PayloadError::Image {
            path: layout.payload_paths().image,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        let message = failure_message(&error, &layout);
        assert!(
            message.contains("cannot open the payload image /usr/lib/mfv/payload.squashfs"),
            "{message}"
        );
        assert!(message.contains("write the medium again"), "{message}");
    }
}
