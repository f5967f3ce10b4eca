//! Block device names: sysfs lists a device by its kernel name, in which `/` is written `!`
//! (`cciss!c0d0`); its node is that name with the `/` put back, under the dev root.

use std::path::{Path, PathBuf};

/// The device node of the block device the kernel calls `name`, under `dev_root` (`/dev`):
/// `cciss!c0d0` is `<dev_root>/cciss/c0d0`.
pub fn device_node(dev_root: &Path, name: &str) -> PathBuf {
    dev_root.join(name.replace('!', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
