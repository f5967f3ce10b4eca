//! Hardware inventory read from sysfs, for an appliance that loads its own drivers.
//!
//! `mfv-probe` owns everything the host learns about its hardware by reading a sysfs tree:
//! today the network interfaces ([`list_nics`]); later the devices on every bus with their
//! modaliases, the kernel modules that drive them, block devices and CPU features.
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

mod error;
mod nic;
mod sysfs;

pub use error::{ProbeError, ProbeIssue};
pub use nic::{DEFAULT_SYSFS_ROOT, Nic, OperState, list_nics, list_nics_at};
