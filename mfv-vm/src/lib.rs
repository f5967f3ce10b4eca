//! Virtual machines on libvirt: the spec of a VM and its domain XML, lifecycle, storage,
//! consoles, snapshots, clones and restore from the config store.
//!
//! `mfv-vm` owns what a VM is ([`VmSpec`]) and everything done to VMs through libvirt. The
//! spec has a serde form; [`VmSpec::validate`] collects every problem at once, each naming
//! the field (`disks[1].target`) and what is wrong; [`VmSpec::to_domain_xml`] and
//! [`VmSpec::from_domain_xml`] turn it into libvirt domain XML and back.
//!
//! # What this crate never does
//!
//! It never knows HTTP, users or permissions: callers decide who may do what. It never
//! reads the appliance's config files; specs come in as values. It talks to libvirt only,
//! never to QEMU directly.
//!
//! ```
//! let spec: mfv_vm::VmSpec = serde_json::from_str(r#"{
//!     "name": "web-1", "vcpus": 2, "memory_mib": 2048,
//!     "disks": [{"target": "vda", "source": {"new_volume": {"pool": "default", "size_gib": 20}}}],
//!     "nics": [{"source": {"bridge": "br0"}}]
//! }"#)?;
//! spec.validate(&mfv_vm::SpecLimits::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod clone;
mod connection;
mod libvirt;
mod lifecycle;
mod mac;
mod media;
mod network;
mod persist;
mod snapshot;
mod spec;
mod storage;
mod validate;
mod xml;

pub use clone::{CloneError, ClonePlan, CloneProgress, DiskCopy};
pub use connection::Hypervisor;
pub use libvirt::{ObjectKind, VirtError};
pub use lifecycle::{
    ConsoleInput, DiskCounters, LifecycleEvent, LifecycleEvents, NicCounters, SerialConsole,
    ShutdownOutcome, VmInfo, VmState, VmSummary, VncEndpoint, VolumePolicy,
};
pub use mac::{InvalidMacAddress, MacAddress};
pub use network::NetworkInfo;
pub use persist::{AutostartReport, Definitions, INDEX_FILE, RestoreReport};
pub use snapshot::SnapshotInfo;
pub use spec::{
    BootDevice, DiskBus, DiskSource, DiskSpec, ExtraXml, Firmware, ImageFormat, KernelBoot,
    NewVolume, NicModel, NicSource, NicSpec, VmSpec, VncSpec,
};
pub use storage::{PoolInfo, UploadProgress, VolumeInfo};
pub use validate::{ExistingVm, SpecError, SpecErrors, SpecLimits};
pub use xml::{HostCapabilities, ImportedDomain, METADATA_NAMESPACE, OvmfFirmware, XmlError};
