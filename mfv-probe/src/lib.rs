//! Hardware inventory read from sysfs, for an appliance that loads its own drivers.
//!
//! `mfv-probe` owns everything the host learns about its hardware by reading a sysfs tree:
//! today the network interfaces ([`list_nics`]); later the devices on every bus with their
//! modaliases, the kernel modules that drive them, block devices and CPU features.
//! The [`modules`] module resolves modaliases to kernel modules like kmod and loads them, with
//! their dependencies, through a [`modules::ModuleLoader`] the caller passes in.
//! [`list_devices`] lists the devices on every bus with modalias, ids and driver; [`coldplug`]
//! loads their drivers pass after pass until no new device appears and reports what it did;
//! [`UeventListener`] and [`handle_uevent`] do the same for devices that arrive later
//! (hotplug) and turn kernel uevents into [`HotplugEvent`]s.
//! [`inventory_at`] takes the whole [`Inventory`] (NICs, block devices with their partitions
//! and the file system type, label and UUID libblkid reads from their nodes, USB devices, CPU
//! and KVM, memory) from the sysfs, procfs and /dev roots in [`SystemRoots`], as a table or as
//! stable JSON. [`unsettled_usb_storage_at`] tells whether USB mass storage is still on its
//! way to becoming block devices (usb-storage scans after a delay), so config discovery can
//! wait for it.
//!
//! # What this crate never does
//!
//! It never mounts, configures or changes anything: it does not bring links up, assign
//! addresses, write to sysfs or load modules on its own. It only reads, and it reports what it
//! could not read instead of stopping at the first problem. It never panics on odd sysfs
//! contents.
//!
//! # Roots are parameters
//!
//! Every reader takes the sysfs root as a parameter (`*_at(root)`); the function without the
//! suffix uses [`DEFAULT_SYSFS_ROOT`]. Tests build fixture trees in a temporary directory.
//!
//! ```no_run
//! for nic in mfv_probe::list_nics()? {
//!     println!("{} {}", nic.name, nic.mac.as_deref().unwrap_or("-"));
//! }
//! # Ok::<(), mfv_probe::ProbeError>(())
//! ```
#![warn(missing_docs)]

mod block;
mod coldplug;
mod cpu;
mod devices;
mod error;
mod inventory;
mod memory;
pub mod modules;
mod nic;
mod sysfs;
mod uevent;
mod usb;
mod usb_storage;

pub use block::{BlockDevice, BlockKind, Partition, list_block_devices_at};
pub use coldplug::{
    ColdplugEnd, ColdplugError, ColdplugOptions, ColdplugReport, DriverLoader, ModaliasLoad,
    ModuleDriverLoader, ModuleStep, UnboundDevice, coldplug,
};
pub use cpu::{Cpu, KvmStatus, Virtualization, read_cpu_at};
pub use devices::{Device, DeviceListing, list_devices, list_devices_at};
pub use error::{ProbeError, ProbeIssue};
pub use inventory::{
    DEFAULT_DEV_ROOT, DEFAULT_PROC_ROOT, Inventory, SystemRoots, inventory, inventory_at,
};
pub use memory::{Memory, read_memory_at};
pub use mfv_linux::OperState;
pub use nic::{DEFAULT_SYSFS_ROOT, Nic, list_nics, list_nics_at};
pub use uevent::{
    HandledUevent, HotplugEvent, Uevent, UeventAction, UeventError, UeventListener,
    UeventParseError, UeventStats, handle_uevent, parse_uevent,
};
pub use usb::{UsbDevice, UsbInterface, list_usb_devices_at};
pub use usb_storage::{StorageSettling, UnsettledStorage, unsettled_usb_storage_at};
