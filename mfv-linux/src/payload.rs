//! Mounting a squashfs image held in a file read-only through a loop device: how the appliance
//! joins its payload (kernel modules, libvirt, QEMU and their firmware) into the tree. The
//! image stays compressed in RAM and is read on demand, so only what early boot needs is
//! unpacked by the kernel.
//!
//! The loop and squashfs drivers are modules in Debian's kernel: they are loaded first, from
//! files outside the payload. Every path is a parameter.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::kmod::{ModuleInitFlags, finit_module};
use nix::mount::{MsFlags, mount};

/// Where things are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadPaths {
    /// The squashfs image (`/usr/lib/mfv/payload.squashfs`).
    pub image: PathBuf,
    /// Where it is mounted (`/usr/lib/mfv/payload`).
    pub mount_point: PathBuf,
    /// Uncompressed module files loaded first, in order (loop.ko, squashfs.ko); a module the
    /// kernel has already (built in or loaded) is passed over.
    pub modules: Vec<PathBuf>,
    /// The device directory (`/dev`), where `loop-control` and `loopN` are.
    pub dev_dir: PathBuf,
}

/// Why the payload could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The image file is missing or unreadable.
    #[error("cannot open the payload image {path}: {source}")]
    Image {
        /// The image.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A module file could not be opened.
    #[error("cannot open module {path}: {source}")]
    ModuleFile {
        /// The module file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The kernel refused a module.
    #[error("cannot load module {path}: {source}")]
    Module {
        /// The module file.
        path: PathBuf,
        /// The kernel's error.
        source: Errno,
    },
    /// No loop device could be had.
    #[error("cannot get a free loop device from {path}: {source}")]
    LoopControl {
        /// `loop-control`.
        path: PathBuf,
        /// Why.
        source: Errno,
    },
    /// The loop device could not be opened or bound to the image.
    #[error("cannot attach {image} to {device}: {source}")]
    Attach {
        /// The image.
        image: PathBuf,
        /// The loop device.
        device: PathBuf,
        /// Why.
        source: Errno,
    },
    /// The mount point could not be made.
    #[error("cannot create the mount point {path}: {source}")]
    MountPoint {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// mount(2) refused.
    #[error("cannot mount {device} (squashfs) on {mount_point}: {source}")]
    Mount {
        /// The loop device.
        device: PathBuf,
        /// The mount point.
        mount_point: PathBuf,
        /// The kernel's error.
        source: Errno,
    },
}

/// What [`mount_payload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedPayload {
    /// The loop device the image is attached to.
    pub device: PathBuf,
    /// The image's size in bytes.
    pub image_bytes: u64,
    /// The modules this call loaded (those already in the kernel are not listed).
    pub loaded_modules: Vec<PathBuf>,
}

/// `struct loop_info64` of `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    size_limit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` of `<linux/loop.h>` (LOOP_CONFIGURE, Linux 5.8).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

nix::ioctl_none_bad!(
    /// LOOP_CTL_GET_FREE: the number of a free loop device.
    loop_ctl_get_free,
    0x4C82
);
nix::ioctl_write_ptr_bad!(
    /// LOOP_CONFIGURE: binds a file to the loop device with its settings.
    loop_configure,
    0x4C0A,
    LoopConfig
);

/// Loads the modules, attaches the image to a free loop device read-only and mounts it
/// read-only at the mount point (created if missing).
pub fn mount_payload(paths: &PayloadPaths) -> Result<MountedPayload, PayloadError> {
    let image = File::open(&paths.image).map_err(|source| PayloadError::Image {
        path: paths.image.clone(),
        source,
    })?;
    let image_bytes = image
        .metadata()
        .map_err(|source| PayloadError::Image {
            path: paths.image.clone(),
            source,
        })?
        .len();
    let mut loaded_modules = Vec::new();
    for module in &paths.modules {
        if load_module(module)? {
            loaded_modules.push(module.clone());
        }
    }
    // Held open until the mount holds the device: with autoclear, the last close of an
    // unmounted loop device unbinds it.
    let (device, _loop_file) = attach(&image, paths)?;
    std::fs::create_dir_all(&paths.mount_point).map_err(|source| PayloadError::MountPoint {
        path: paths.mount_point.clone(),
        source,
    })?;
    mount(
        Some(&device),
        &paths.mount_point,
        Some("squashfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        None::<&str>,
    )
    .map_err(|source| PayloadError::Mount {
        device: device.clone(),
        mount_point: paths.mount_point.clone(),
        source,
    })?;
    Ok(MountedPayload {
        device,
        image_bytes,
        loaded_modules,
    })
}

/// Loads one module file; `false` when the kernel has it already.
fn load_module(path: &Path) -> Result<bool, PayloadError> {
    let file = File::open(path).map_err(|source| PayloadError::ModuleFile {
        path: path.to_path_buf(),
        source,
    })?;
    match finit_module(&file, c"", ModuleInitFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(source) => Err(PayloadError::Module {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Binds `image` read-only to a free loop device; returns its path and the open device. The
/// binding goes when the device is last closed while unmounted (autoclear).
fn attach(image: &File, paths: &PayloadPaths) -> Result<(PathBuf, File), PayloadError> {
    let control_path = paths.dev_dir.join("loop-control");
    let control = File::open(&control_path).map_err(|error| PayloadError::LoopControl {
        path: control_path.clone(),
        source: io_errno(&error),
    })?;
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number; the descriptor is open.
    let number = unsafe { loop_ctl_get_free(control.as_raw_fd()) }.map_err(|source| {
        PayloadError::LoopControl {
            path: control_path,
            source,
        }
    })?;
    let device = paths.dev_dir.join(format!("loop{number}"));
    let attach_error = |source| PayloadError::Attach {
        image: paths.image.clone(),
        device: device.clone(),
        source,
    };
    let loop_file = OpenOptions::new()
        .read(true)
        .open(&device)
        .map_err(|error| attach_error(io_errno(&error)))?;
    let config = LoopConfig {
        fd: u32::try_from(image.as_raw_fd()).map_err(|_| attach_error(Errno::EBADF))?,
        block_size: 0,
        info: LoopInfo64 {
            device: 0,
            inode: 0,
            rdevice: 0,
            offset: 0,
            size_limit: 0,
            number: 0,
            encrypt_type: 0,
            encrypt_key_size: 0,
            flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
            file_name: [0; 64],
            crypt_name: [0; 64],
            encrypt_key: [0; 32],
            init: [0; 2],
        },
        reserved: [0; 8],
    };
    // SAFETY: `config` is a live `struct loop_config` the kernel only reads; both descriptors
    // are open for the duration of the call.
    unsafe { loop_configure(loop_file.as_raw_fd(), &config) }.map_err(attach_error)?;
    Ok((device, loop_file))
}

fn io_errno(error: &std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> PayloadPaths {
        PayloadPaths {
            image: dir.join("payload.squashfs"),
            mount_point: dir.join("payload"),
            modules: vec![dir.join("loop.ko")],
            dev_dir: dir.join("dev"),
        }
    }

    #[test]
    fn a_missing_image_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = mount_payload(&paths(dir.path())).unwrap_err();
        assert!(matches!(error, PayloadError::Image { .. }), "{error:?}");
        assert!(error.to_string().contains("payload.squashfs"), "{error}");
    }

    #[test]
    fn a_missing_module_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("payload.squashfs"), b"hsqs").unwrap();
        let error = mount_payload(&paths(dir.path())).unwrap_err();
        assert!(
            matches!(error, PayloadError::ModuleFile { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("loop.ko"), "{error}");
    }

    #[test]
    fn the_loop_structures_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }
}
