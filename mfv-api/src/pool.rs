//! The storage pool requests' data: a pool as the configuration's `[[storage.pools]]` has it,
//! added and removed while the host runs.

use serde::{Deserialize, Serialize};

/// What backs a storage pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// A directory of image files on the host.
    Dir,
    /// An LVM volume group on a block device; each disk is a logical volume.
    Logical,
    /// An NFS export mounted on the host; each disk is an image file.
    Nfs,
}

/// A storage pool to add: one `[[storage.pools]]` entry of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// The pool's name: letters, digits, `.`, `_` and `-`, not starting with `.`.
    pub name: String,
    /// What backs it.
    pub kind: PoolKind,
    /// `dir`: the directory holding the images (made if missing). `nfs`: where the export is
    /// mounted (default `/var/lib/mfv/pools/NAME`). Absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `logical`: the block device the LVM volume group named after the pool is on; it is
    /// built there only if the device holds nothing (no partition table, no file system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// `nfs`: the NFS server's host name or IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `nfs`: the exported directory on the server. Absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
}
