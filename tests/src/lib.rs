//! Appliance test harness: boots the Minifed-Virt kernel and initrd under QEMU and talks to
//! the guest through its serial console, QMP and forwarded TCP ports.
//!
//! The pieces:
//! - [`ApplianceImage`] finds the kernel and initrd, building them once per test run with
//!   `cargo xtask image` (or taking them from `MFV_APPLIANCE_DIR`).
//! - [`GuestSpec`] describes a guest (accelerator, machine type, CPU model, memory, CPUs,
//!   NICs, disks blank or holding a labelled [`Filesystem`], kernel arguments, port
//!   forwards, what it boots from: QEMU's direct kernel boot or, as a user boots it, PXE, a
//!   CD or a USB stick ([`BootSource`]) on BIOS or UEFI ([`Firmware`])) and turns it into a QEMU command line, either for a test
//!   ([`GuestSpec::boot`]) or for a person at a terminal ([`GuestSpec::interactive_command`],
//!   used by `cargo xtask boot`).
//! - [`Guest`] is one running QEMU process: it owns its temp dir, its process group and its
//!   forwarded ports, reads the serial console with deadline-bound waits, plugs USB disks in
//!   and out through QMP ([`Guest::hotplug_usb_disk`]), and kills and reaps QEMU when
//!   dropped, also while a test panics, printing the serial log on failure.
//! - [`VolumeImage`] builds disk images holding files on ext4 or vfat (whole disk or one
//!   partition of an MBR or GPT disk) or iso9660, for config volumes ([`DiskSpec::file`]).
//! - [`with_probe_hardware`] gives a guest one NIC of each model and a disk on each interface
//!   ([`PROBE_NICS`], [`PROBE_DISKS`]), for the driver tests and `cargo xtask bench probe`.
//! - Private servers for the tests of the crates that talk to them, shared so that each
//!   lives once: [`libvirtd`] (mfv-vm, `mfv vm`, `cargo xtask bench vm`), [`slapd`] and
//!   [`mariadb`] (the LDAP and MySQL user backends, `mfv auth`, the `[auth]` configuration),
//!   the latter two under the watchdog of [`server`], which stops them when the test process
//!   ends; both serve TLS with certificates from [`certificates`]. [`nfs`] is an NFSv4
//!   server (NFS-Ganesha) under the same watchdog, for the appliance's nfs storage pools.
//! - [`loop_device`]: loop devices over sparse files, for tests on real block devices.
//! - [`browser`]: headless Chromium through chromedriver, for the web pages.
//! - [`https`]: an HTTPS client for the web server's tests that records the fingerprint of
//!   the certificate it was shown and can send malformed requests.
//!
//! Acceptance tests live in `tests/` (one file per subsystem) and need the real image:
//!
//! ```no_run
//! use std::time::Duration;
//! use mfv_tests::{ApplianceImage, DiskInterface, DiskSpec, GuestSpec, NicModel};
//!
//! # fn main() -> anyhow::Result<()> {
//! let mut guest = GuestSpec::new(ApplianceImage::shared()?)
//!     .kernel_arg("mfv.halt=poweroff")
//!     .nic(NicModel::VirtioNet)
//!     .forward_port(443)
//!     .disk(DiskSpec::blank(DiskInterface::Sata, 64 << 20))
//!     .boot()?;
//! guest.wait_for_line("mfv-init: boot sequence complete", Duration::from_secs(60))?;
//! let web_port = guest.host_port(443);
//! assert!(guest.wait_for_exit(Duration::from_secs(60))?.success());
//! # let _ = web_port;
//! # Ok(())
//! # }
//! ```
//!
//! Environment: `MFV_APPLIANCE_DIR` points [`ApplianceImage::shared`] at a ready-made image
//! instead of building one. QEMU comes from the Debian package `qemu-system-x86`; a missing
//! QEMU is an error naming it, never a skipped test.
#![warn(missing_docs)]

pub mod browser;
pub mod certificates;
mod filesystem;
mod guest;
mod hardware;
pub mod https;
mod image;
pub mod libvirtd;
pub mod loop_device;
pub mod mariadb;
pub mod nfs;
mod ports;
mod qmp;
mod serial;
pub mod server;
pub mod setup_screen;
pub mod slapd;
mod spec;
mod volume;

pub use filesystem::Filesystem;
pub use guest::{Guest, INIT_PREFIX};
pub use hardware::{PROBE_DISKS, PROBE_NICS, ProbeDisk, with_probe_hardware};
pub use image::{APPLIANCE_DIR_ENV, ApplianceImage, GRUB_NETBOOT_CONFIG, IPXE_SCRIPT, ISO_FILE};
pub use ports::free_local_port;
pub use spec::{
    Accel, BootSource, DiskInterface, DiskSpec, Firmware, GuestSpec, MachineType, NicModel,
    USB_STICK_DEVICE,
};
pub use volume::{PartitionTable, VolumeFilesystem, VolumeImage};
