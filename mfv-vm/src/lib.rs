//! Virtual machines on libvirt: the spec of a VM and (later) its domain XML, lifecycle,
//! storage, consoles, snapshots and restore from the config store.
//!
//! `mfv-vm` owns what a VM is ([`VmSpec`]) and, later, everything done to VMs through
//! libvirt. Today it provides the spec with its serde form and [`VmSpec::validate`], which
//! collects every problem at once, each naming the field (`disks[1].target`) and what is
//! wrong.
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
//!     "nics": [{"bridge": "br0"}]
//! }"#)?;
//! spec.validate(&mfv_vm::SpecLimits::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod mac;
mod spec;
mod validate;

pub use mac::{InvalidMacAddress, MacAddress};
pub use spec::{DiskBus, DiskSource, DiskSpec, NicModel, NicSpec, VmSpec};
pub use validate::{SpecError, SpecErrors, SpecLimits};
