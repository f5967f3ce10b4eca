//! What a VM is: the spec the user writes and the config store keeps.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A virtual machine as the user describes it. Unknown fields are rejected when
/// deserializing, so a misspelt field is an error rather than silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    /// The libvirt domain name: letters, digits, `.`, `_`, `-`, starting with a letter or
    /// digit, at most 64 characters.
    pub name: String,
    /// Number of virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Disks, in boot order.
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
    /// Network interfaces.
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    /// An ISO image attached as CD-ROM and booted first (absolute path on the host).
    #[serde(default)]
    pub boot_iso: Option<PathBuf>,
    /// Start the VM when the host boots.
    #[serde(default)]
    pub autostart: bool,
}

/// One disk of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// The device name in the guest's view as libvirt names it: `vda`, `vdb`... on virtio,
    /// `sda`, `sdb`... on SATA.
    pub target: String,
    /// The bus the disk is attached to.
    #[serde(default)]
    pub bus: DiskBus,
    /// Where the disk's data lives.
    pub source: DiskSource,
}

/// The bus a disk is attached to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskBus {
    /// Paravirtualized (virtio-blk); fast, needs guest drivers.
    #[default]
    Virtio,
    /// Emulated AHCI SATA; works with any guest.
    Sata,
}

impl fmt::Display for DiskBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Sata => "sata",
        })
    }
}

/// Where a disk's data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DiskSource {
    /// A new qcow2 volume created in a storage pool.
    NewVolume {
        /// The libvirt storage pool.
        pool: String,
        /// Virtual size in GiB.
        size_gib: u64,
    },
    /// An existing image file on the host (absolute path).
    Image {
        /// The image file.
        path: PathBuf,
    },
}

/// One network interface of a VM, attached to a host bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicSpec {
    /// The host bridge, e.g. `br0`.
    pub bridge: String,
    /// The emulated NIC model.
    #[serde(default)]
    pub model: NicModel,
    /// The MAC address (`52:54:00:12:34:56`); libvirt generates one when absent.
    #[serde(default)]
    pub mac: Option<String>,
}

/// The NIC model the guest sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NicModel {
    /// Paravirtualized virtio-net.
    #[default]
    Virtio,
    /// Emulated Intel e1000; works with any guest.
    E1000,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_optional_fields() {
        let spec: VmSpec = serde_json::from_str(
            r#"{"name": "t", "vcpus": 1, "memory_mib": 64,
                "disks": [{"target": "vda", "source": {"image": {"path": "/i.qcow2"}}}],
                "nics": [{"bridge": "br0"}]}"#,
        )
        .unwrap();
        assert_eq!(spec.disks[0].bus, DiskBus::Virtio);
        assert_eq!(spec.nics[0].model, NicModel::Virtio);
        assert_eq!(spec.nics[0].mac, None);
        assert_eq!(spec.boot_iso, None);
        assert!(!spec.autostart);
    }

    #[test]
    fn round_trips_through_json() {
        let spec = VmSpec {
            name: "db".into(),
            vcpus: 4,
            memory_mib: 8192,
            disks: vec![DiskSpec {
                target: "sda".into(),
                bus: DiskBus::Sata,
                source: DiskSource::NewVolume {
                    pool: "default".into(),
                    size_gib: 100,
                },
            }],
            nics: vec![NicSpec {
                bridge: "br0".into(),
                model: NicModel::E1000,
                mac: Some("52:54:00:00:00:01".into()),
            }],
            boot_iso: Some("/iso/install.iso".into()),
            autostart: true,
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "db", "vcpus": 4, "memory_mib": 8192,
                "disks": [{"target": "sda", "bus": "sata",
                           "source": {"new_volume": {"pool": "default", "size_gib": 100}}}],
                "nics": [{"bridge": "br0", "model": "e1000", "mac": "52:54:00:00:00:01"}],
                "boot_iso": "/iso/install.iso",
                "autostart": true
            })
        );
        assert_eq!(serde_json::from_value::<VmSpec>(json).unwrap(), spec);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let error = serde_json::from_str::<VmSpec>(
            r#"{"name": "t", "vcpu": 1, "vcpus": 1, "memory_mib": 64}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `vcpu`"),
            "{error}"
        );
    }

    #[test]
    fn bus_names_for_messages() {
        assert_eq!(DiskBus::Virtio.to_string(), "virtio");
        assert_eq!(DiskBus::Sata.to_string(), "sata");
    }
}
