//! `cargo xtask boot`: the appliance in QEMU with the serial console on this terminal and the
//! web port forwarded to 127.0.0.1:8443.
//!
//! The host gets two disks that stay between boots, as a real host's do: a small one the
//! setup wizard can make the config volume, and a large sparse one for a storage pool (an
//! LVM pool on `/dev/vdb`). So a person can set the host up, create VMs, reboot and find
//! everything again; `--fresh` starts over with blank disks.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use mfv_tests::{Accel, ApplianceImage, DiskInterface, DiskSpec, GuestSpec, NicModel};

use crate::{Workspace, cmd};

/// The host port the guest's HTTPS port 443 is forwarded to.
const HOST_WEB_PORT: u16 = 8443;
const GUEST_WEB_PORT: u16 = 443;
/// The disk the wizard can make the config volume (`/dev/vda`).
const CONFIG_DISK: (&str, u64) = ("config.img", 256 << 20);
/// The disk for VM storage (`/dev/vdb`), sparse: it takes host space only as VMs write.
const DATA_DISK: (&str, u64) = ("data.img", 32 << 30);
/// Enough for the host and a small VM or two under TCG.
const MEMORY_MIB: u32 = 2048;
const CPUS: u32 = 2;

/// Boots target/appliance interactively with the disks in target/boot (new blank ones when
/// `fresh` or missing); returns when QEMU exits.
pub fn interactive(
    workspace: &Workspace,
    kvm: bool,
    fresh: bool,
    kernel_args: &[String],
) -> Result<()> {
    let image = ApplianceImage::at(&workspace.appliance_dir())?;
    let disk_dir = workspace.target.join("boot");
    std::fs::create_dir_all(&disk_dir).with_context(|| format!("create {}", disk_dir.display()))?;
    let mut spec = GuestSpec::new(&image)
        .accel(if kvm { Accel::Kvm } else { Accel::Tcg })
        .memory_mib(MEMORY_MIB)
        .cpus(CPUS)
        .nic(NicModel::VirtioNet)
        .forward_port_to(HOST_WEB_PORT, GUEST_WEB_PORT);
    for (name, size_bytes) in [CONFIG_DISK, DATA_DISK] {
        let path = disk_dir.join(name);
        blank_disk(&path, size_bytes, fresh)?;
        spec = spec.disk(DiskSpec::file(DiskInterface::Virtio, path));
    }
    let spec = kernel_args
        .iter()
        .fold(spec, |spec, arg| spec.kernel_arg(arg.clone()));
    let mut command = spec.interactive_command()?;
    println!("{}", cmd::display(&command));
    println!(
        "Disks (kept between boots; --fresh starts over): /dev/vda {} ({} MiB, for the config \
         volume), /dev/vdb {} ({} GiB sparse, for a storage pool).",
        disk_dir.join(CONFIG_DISK.0).display(),
        CONFIG_DISK.1 >> 20,
        disk_dir.join(DATA_DISK.0).display(),
        DATA_DISK.1 >> 30
    );
    println!(
        "Serial console follows; guest port {GUEST_WEB_PORT} is https://127.0.0.1:{HOST_WEB_PORT}/. Quit QEMU with Ctrl-A X (Ctrl-A C toggles the QEMU monitor)."
    );
    cmd::run(&mut command)
}

/// A sparse raw disk of `size_bytes` at `path`, made blank when `fresh` or absent; an existing
/// one is kept as it is.
fn blank_disk(path: &Path, size_bytes: u64, fresh: bool) -> Result<()> {
    if path.exists() && !fresh {
        return Ok(());
    }
    let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
    file.set_len(size_bytes)
        .with_context(|| format!("size {} to {size_bytes} bytes", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn a_disk_is_kept_between_boots_and_blank_again_when_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.img");
        blank_disk(&path, 1 << 20, false).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
        std::fs::write(&path, b"a configuration").unwrap();
        blank_disk(&path, 1 << 20, false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a configuration");
        blank_disk(&path, 1 << 20, true).unwrap();
        let blank = std::fs::read(&path).unwrap();
        assert_eq!(blank.len(), 1 << 20);
        assert!(blank.iter().all(|byte| *byte == 0));
    }

    #[test]
    fn a_disk_that_cannot_be_made_names_its_path() {
        let error = blank_disk(Path::new("/nonexistent/dir/data.img"), 1 << 20, false).unwrap_err();
        assert!(
            format!("{error:#}").contains("/nonexistent/dir/data.img"),
            "{error:#}"
        );
    }
}
