//! What a VM is: the spec the user writes and the config store keeps.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validate::{SpecError, SpecErrors};

/// A virtual machine as the user describes it. Unknown fields are rejected when
/// deserializing, so a misspelt field is an error rather than silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    /// The libvirt domain name: letters, digits, `.`, `_`, `-`, starting with a letter or
    /// digit, at most 64 characters.
    pub name: String,
    /// The domain's UUID; libvirt generates one when absent.
    #[serde(default)]
    pub uuid: Option<Uuid>,
    /// Number of virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// The firmware the VM boots with.
    #[serde(default)]
    pub firmware: Firmware,
    /// Disks. Without an explicit [`VmSpec::boot_order`] they boot in this order, after the
    /// CD-ROM.
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
    /// An ISO image on the host (absolute path) in the VM's CD-ROM drive.
    #[serde(default, alias = "boot_iso")]
    pub cdrom: Option<PathBuf>,
    /// Network interfaces.
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    /// The VNC display: on by default, listening on no address (see [`VncSpec`]). `null`
    /// is read as none, as before the display was on by default.
    #[serde(default, deserialize_with = "vnc_or_none")]
    pub vnc: VncSpec,
    /// A serial port whose console can be streamed (`virsh console`). On by default.
    #[serde(default = "serial_console_default")]
    pub serial_console: bool,
    /// Boot a kernel and initrd from host files directly instead of firmware boot devices.
    #[serde(default)]
    pub kernel_boot: Option<KernelBoot>,
    /// The devices to boot from, first first. Empty means the CD-ROM (if any), then the
    /// disks in their order.
    #[serde(default)]
    pub boot_order: Vec<BootDevice>,
    /// Start the VM when the host boots.
    #[serde(default)]
    pub autostart: bool,
    /// Free text shown to users.
    #[serde(default)]
    pub description: Option<String>,
    /// Labels for grouping and filtering VMs (same rules as names).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Domain XML kept verbatim from a domain defined outside this crate (see
    /// [`VmSpec::from_domain_xml`]); empty for VMs created from a spec.
    #[serde(default, skip_serializing_if = "ExtraXml::is_empty")]
    pub extra_xml: ExtraXml,
}

fn serial_console_default() -> bool {
    true
}

/// `vnc` as given, or [`VncSpec::NONE`] for `null`.
fn vnc_or_none<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<VncSpec, D::Error> {
    Ok(Option::<VncSpec>::deserialize(deserializer)?.unwrap_or(VncSpec::NONE))
}

/// The firmware a VM boots with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Firmware {
    /// Legacy BIOS (SeaBIOS).
    #[default]
    Bios,
    /// UEFI (OVMF), with a per-VM variable store.
    Uefi,
}

/// One disk of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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

impl DiskSpec {
    /// The name of the volume a [`DiskSource::NewVolume`] disk of VM `vm_name` lives in:
    /// `{vm_name}-{target}.qcow2`, or `.img` for a raw one.
    pub fn volume_name(&self, vm_name: &str) -> String {
        let extension = match self.source.format() {
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Raw => "img",
        };
        format!("{vm_name}-{}.{extension}", self.target)
    }
}

/// The bus a disk is attached to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DiskBus {
    /// Paravirtualized (virtio-blk); fast, needs guest drivers.
    #[default]
    Virtio,
    /// Emulated AHCI SATA; works with any guest.
    Sata,
}

impl DiskBus {
    /// The name libvirt uses for the bus.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Sata => "sata",
        }
    }
}

impl fmt::Display for DiskBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a disk's data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DiskSource {
    /// A volume owned by the VM, created in a storage pool before the VM is defined and
    /// named by [`DiskSpec::volume_name`].
    NewVolume {
        /// The libvirt storage pool.
        pool: String,
        /// Virtual size in GiB.
        size_gib: u64,
        /// The volume's format; left out, the pool's own: qcow2 (allocated as the guest
        /// writes) in a directory or NFS pool, raw in an LVM pool, whose logical volumes are
        /// allocated whole (see [`VmSpec::with_pool_formats`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<ImageFormat>,
    },
    /// An existing volume in a storage pool.
    Volume {
        /// The libvirt storage pool.
        pool: String,
        /// The volume's name in the pool.
        volume: String,
        /// The volume's format.
        #[serde(default)]
        format: ImageFormat,
    },
    /// An existing image file on the host (absolute path).
    Image {
        /// The image file.
        path: PathBuf,
        /// The image's format.
        #[serde(default)]
        format: ImageFormat,
    },
}

impl DiskSource {
    /// The format the disk's data is read as: a new volume's own, qcow2 when it is left
    /// to the pool and not settled yet.
    pub fn format(&self) -> ImageFormat {
        match self {
            DiskSource::NewVolume { format, .. } => format.unwrap_or_default(),
            DiskSource::Volume { format, .. } | DiskSource::Image { format, .. } => *format,
        }
    }
}

/// The format of a disk image. It is always stated, never probed: a guest could write a
/// qcow2 header into a raw image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    /// QEMU copy-on-write v2.
    #[default]
    Qcow2,
    /// Plain bytes.
    Raw,
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ImageFormat {
    /// The name libvirt and qemu-img use for the format.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Raw => "raw",
        }
    }
}

/// A volume the VM's definition refers to that must be created before the VM is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVolume {
    /// The storage pool.
    pub pool: String,
    /// The volume's name, from [`DiskSpec::volume_name`].
    pub name: String,
    /// Virtual size in GiB.
    pub size_gib: u64,
    /// Its format.
    pub format: ImageFormat,
    /// The disk it is for.
    pub disk_target: String,
}

/// One network interface of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NicSpec {
    /// What the NIC is plugged into.
    pub source: NicSource,
    /// The emulated NIC model.
    #[serde(default)]
    pub model: NicModel,
    /// The MAC address (`52:54:00:12:34:56`); libvirt generates one when absent.
    #[serde(default)]
    pub mac: Option<String>,
}

/// What a NIC is plugged into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NicSource {
    /// A host bridge, e.g. `br0`.
    Bridge(String),
    /// A libvirt virtual network, e.g. `default`.
    Network(String),
}

/// The NIC model the guest sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum NicModel {
    /// Paravirtualized virtio-net.
    #[default]
    Virtio,
    /// Emulated Intel e1000; works with any guest.
    E1000,
    /// Emulated Realtek RTL8139; for very old guests.
    Rtl8139,
}

impl NicModel {
    /// The name libvirt uses for the model.
    pub fn as_str(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio",
            NicModel::E1000 => "e1000",
            NicModel::Rtl8139 => "rtl8139",
        }
    }
}

/// A VM's VNC display.
///
/// Every VM has one unless its spec says `"enabled": false`, and by default it listens on
/// no address at all (`<listen type='none'/>`: QEMU opens no port). The web console reaches
/// it through a socket libvirt hands over with the display's authentication skipped
/// (`virDomainOpenGraphicsFD`), so it needs neither a port nor a password, and who may see
/// the screen is decided by the web server's `use_console` permission alone.
///
/// A password is for a desktop VNC viewer: with one the display also listens on a port of
/// the host's loopback address (libvirt picks it; `mfv vm console --vnc` prints it), to be
/// reached through an SSH tunnel, and asks that password. Without a listening port no
/// one could be asked for a password, and a port without one would show the screen to any
/// process on the host, so the password and the port come together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct VncSpec {
    /// Whether the VM has a VNC display. On by default.
    #[serde(default = "vnc_enabled_default")]
    pub enabled: bool,
    /// The password of a display that also listens on a loopback TCP port, for desktop VNC
    /// viewers: 1 to 8 printable ASCII characters (VNC uses no more). None by default: the
    /// display listens nowhere and only the web console reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

fn vnc_enabled_default() -> bool {
    true
}

impl VncSpec {
    /// No VNC display.
    pub const NONE: VncSpec = VncSpec {
        enabled: false,
        password: None,
    };
}

impl Default for VncSpec {
    /// A display listening on no address, for the web console.
    fn default() -> VncSpec {
        VncSpec {
            enabled: true,
            password: None,
        }
    }
}

/// A kernel booted directly from host files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct KernelBoot {
    /// The kernel image (absolute path).
    pub kernel: PathBuf,
    /// The initrd (absolute path).
    #[serde(default)]
    pub initrd: Option<PathBuf>,
    /// The kernel command line.
    #[serde(default)]
    pub cmdline: Option<String>,
}

/// A device to boot from. Serializes as `"cdrom"`, `{"disk": "vda"}` or `{"nic": 0}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BootDevice {
    /// The CD-ROM drive.
    Cdrom,
    /// The disk with this target.
    Disk(String),
    /// Network boot (PXE) from the NIC with this index in [`VmSpec::nics`].
    Nic(usize),
}

impl fmt::Display for BootDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootDevice::Cdrom => f.write_str("cdrom"),
            BootDevice::Disk(target) => write!(f, "disk {target}"),
            BootDevice::Nic(index) => write!(f, "nic {index}"),
        }
    }
}

/// Domain XML elements kept verbatim, each a complete element with the namespace
/// declarations it needs. They are re-emitted as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ExtraXml {
    /// Children of `<domain>`, e.g. `<clock offset='localtime'/>`.
    #[serde(default)]
    pub domain: Vec<String>,
    /// Children of `<devices>`, e.g. `<video>...</video>`.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Children of `<metadata>` of other applications.
    #[serde(default)]
    pub metadata: Vec<String>,
}

impl ExtraXml {
    /// Nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.domain.is_empty() && self.devices.is_empty() && self.metadata.is_empty()
    }
}

impl VmSpec {
    /// The devices the VM boots from, in order: [`VmSpec::boot_order`], or when that is
    /// empty the CD-ROM (if any) and then the disks.
    pub fn effective_boot_order(&self) -> Vec<BootDevice> {
        if !self.boot_order.is_empty() {
            return self.boot_order.clone();
        }
        self.cdrom
            .iter()
            .map(|_| BootDevice::Cdrom)
            .chain(
                self.disks
                    .iter()
                    .map(|disk| BootDevice::Disk(disk.target.clone())),
            )
            .collect()
    }

    /// This spec with each new volume's format settled: `only_format(pool)` names the one
    /// format a pool can hold (raw for an LVM pool, whose logical volumes are allocated whole:
    /// a qcow2 that grows would need a sparse snapshot volume, which fails once it fills), or
    /// `None` when it takes either. A new volume left to its pool takes the pool's format; one
    /// that asks for another is refused, naming its field.
    pub fn with_pool_formats(
        &self,
        only_format: impl Fn(&str) -> Option<ImageFormat>,
    ) -> Result<VmSpec, SpecErrors> {
        let mut settled = self.clone();
        let mut errors = Vec::new();
        for (index, disk) in settled.disks.iter_mut().enumerate() {
            let DiskSource::NewVolume { pool, format, .. } = &mut disk.source else {
                continue;
            };
            match (only_format(pool), *format) {
                (Some(only), None) => *format = Some(only),
                (Some(only), Some(asked)) if asked != only => {
                    errors.push(SpecError::FormatNotInPool {
                        field: format!("disks[{index}].source.format"),
                        pool: pool.clone(),
                        only,
                        asked,
                    });
                }
                _ => {}
            }
        }
        match SpecErrors::from_errors(errors) {
            Some(errors) => Err(errors),
            None => Ok(settled),
        }
    }

    /// The volumes to create before the VM is defined, one per
    /// [`DiskSource::NewVolume`] disk.
    pub fn new_volumes(&self) -> Vec<NewVolume> {
        self.disks
            .iter()
            .filter_map(|disk| match &disk.source {
                DiskSource::NewVolume { pool, size_gib, .. } => Some(NewVolume {
                    pool: pool.clone(),
                    name: disk.volume_name(&self.name),
                    size_gib: *size_gib,
                    format: disk.source.format(),
                    disk_target: disk.target.clone(),
                }),
                DiskSource::Volume { .. } | DiskSource::Image { .. } => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_optional_fields() {
        let spec: VmSpec = serde_json::from_str(
            r#"{"name": "t", "vcpus": 1, "memory_mib": 64,
                "disks": [{"target": "vda", "source": {"image": {"path": "/i.qcow2"}}}],
                "nics": [{"source": {"bridge": "br0"}}]}"#,
        )
        .unwrap();
        assert_eq!(spec.disks[0].bus, DiskBus::Virtio);
        assert_eq!(
            spec.disks[0].source,
            DiskSource::Image {
                path: "/i.qcow2".into(),
                format: ImageFormat::Qcow2
            }
        );
        assert_eq!(spec.nics[0].model, NicModel::Virtio);
        assert_eq!(spec.nics[0].mac, None);
        assert_eq!(spec.uuid, None);
        assert_eq!(spec.firmware, Firmware::Bios);
        assert_eq!(spec.cdrom, None);
        assert_eq!(spec.vnc, VncSpec::default());
        assert!(spec.vnc.enabled);
        assert!(spec.serial_console);
        assert_eq!(spec.kernel_boot, None);
        assert!(spec.boot_order.is_empty());
        assert!(!spec.autostart);
        assert_eq!(spec.description, None);
        assert!(spec.tags.is_empty());
        assert!(spec.extra_xml.is_empty());
    }

    #[test]
    fn the_old_boot_iso_field_is_read_as_cdrom() {
        let spec: VmSpec = serde_json::from_str(
            r#"{"name": "t", "vcpus": 1, "memory_mib": 64, "boot_iso": "/iso/a.iso"}"#,
        )
        .unwrap();
        assert_eq!(spec.cdrom, Some("/iso/a.iso".into()));
    }

    #[test]
    fn round_trips_through_json() {
        let spec = VmSpec {
            name: "db".into(),
            uuid: Some(Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef)),
            vcpus: 4,
            memory_mib: 8192,
            firmware: Firmware::Uefi,
            disks: vec![DiskSpec {
                target: "sda".into(),
                bus: DiskBus::Sata,
                source: DiskSource::NewVolume {
                    pool: "default".into(),
                    size_gib: 100,
                    format: None,
                },
            }],
            cdrom: Some("/iso/install.iso".into()),
            nics: vec![NicSpec {
                source: NicSource::Network("default".into()),
                model: NicModel::E1000,
                mac: Some("52:54:00:00:00:01".into()),
            }],
            vnc: VncSpec {
                enabled: true,
                password: Some("secret".into()),
            },
            serial_console: false,
            kernel_boot: None,
            boot_order: vec![
                BootDevice::Cdrom,
                BootDevice::Disk("sda".into()),
                BootDevice::Nic(0),
            ],
            autostart: true,
            description: Some("the database".into()),
            tags: vec!["prod".into()],
            extra_xml: ExtraXml::default(),
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "db", "uuid": "12345678-9abc-4def-8123-456789abcdef",
                "vcpus": 4, "memory_mib": 8192, "firmware": "uefi",
                "disks": [{"target": "sda", "bus": "sata",
                           "source": {"new_volume": {"pool": "default", "size_gib": 100}}}],
                "cdrom": "/iso/install.iso",
                "nics": [{"source": {"network": "default"}, "model": "e1000",
                          "mac": "52:54:00:00:00:01"}],
                "vnc": {"enabled": true, "password": "secret"},
                "serial_console": false,
                "kernel_boot": null,
                "boot_order": ["cdrom", {"disk": "sda"}, {"nic": 0}],
                "autostart": true,
                "description": "the database",
                "tags": ["prod"]
            })
        );
        assert_eq!(serde_json::from_value::<VmSpec>(json).unwrap(), spec);
    }

    #[test]
    fn the_vnc_display_is_on_by_default_and_null_or_disabled_means_none() {
        let read = |vnc: &str| {
            serde_json::from_str::<VmSpec>(&format!(
                r#"{{"name": "t", "vcpus": 1, "memory_mib": 64{vnc}}}"#
            ))
            .map(|spec| spec.vnc)
        };
        assert_eq!(read("").unwrap(), VncSpec::default());
        assert_eq!(read(r#", "vnc": {}"#).unwrap(), VncSpec::default());
        assert_eq!(read(r#", "vnc": null"#).unwrap(), VncSpec::NONE);
        assert_eq!(
            read(r#", "vnc": {"enabled": false}"#).unwrap(),
            VncSpec::NONE
        );
        assert_eq!(
            read(r#", "vnc": {"password": "pw"}"#).unwrap(),
            VncSpec {
                enabled: true,
                password: Some("pw".into())
            }
        );
        let unknown = read(r#", "vnc": {"port": 5900}"#).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `port`"),
            "{unknown}"
        );
        assert_eq!(
            serde_json::to_value(VncSpec::default()).unwrap(),
            serde_json::json!({"enabled": true})
        );
    }

    #[test]
    fn kept_xml_is_serialized_only_when_there_is_some() {
        let mut spec: VmSpec =
            serde_json::from_str(r#"{"name": "t", "vcpus": 1, "memory_mib": 64}"#).unwrap();
        assert!(
            serde_json::to_value(&spec)
                .unwrap()
                .get("extra_xml")
                .is_none()
        );
        spec.extra_xml.devices.push("<video/>".into());
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            json["extra_xml"],
            serde_json::json!({"domain": [], "devices": ["<video/>"], "metadata": []})
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
    fn names_for_messages_and_libvirt() {
        assert_eq!(DiskBus::Virtio.to_string(), "virtio");
        assert_eq!(DiskBus::Sata.to_string(), "sata");
        assert_eq!(ImageFormat::Raw.as_str(), "raw");
        assert_eq!(NicModel::Rtl8139.as_str(), "rtl8139");
        assert_eq!(BootDevice::Cdrom.to_string(), "cdrom");
        assert_eq!(BootDevice::Disk("vda".into()).to_string(), "disk vda");
        assert_eq!(BootDevice::Nic(1).to_string(), "nic 1");
    }

    #[test]
    fn boot_order_defaults_to_cdrom_then_disks() {
        let mut spec: VmSpec = serde_json::from_str(
            r#"{"name": "t", "vcpus": 1, "memory_mib": 64, "cdrom": "/a.iso",
                "disks": [{"target": "vda", "source": {"image": {"path": "/a"}}},
                          {"target": "vdb", "source": {"image": {"path": "/b"}}}]}"#,
        )
        .unwrap();
        assert_eq!(
            spec.effective_boot_order(),
            [
                BootDevice::Cdrom,
                BootDevice::Disk("vda".into()),
                BootDevice::Disk("vdb".into())
            ]
        );
        spec.boot_order = vec![BootDevice::Nic(0)];
        assert_eq!(spec.effective_boot_order(), [BootDevice::Nic(0)]);
    }

    #[test]
    fn new_volumes_are_named_after_the_vm_and_disk() {
        let spec: VmSpec = serde_json::from_str(
            r#"{"name": "web-1", "vcpus": 1, "memory_mib": 64,
                "disks": [{"target": "vda", "source": {"new_volume": {"pool": "p", "size_gib": 5}}},
                          {"target": "vdb", "source": {"image": {"path": "/b"}}},
                          {"target": "vdc", "source": {"volume": {"pool": "p", "volume": "x"}}}]}"#,
        )
        .unwrap();
        assert_eq!(
            spec.new_volumes(),
            [NewVolume {
                pool: "p".into(),
                name: "web-1-vda.qcow2".into(),
                size_gib: 5,
                format: ImageFormat::Qcow2,
                disk_target: "vda".into()
            }]
        );
    }

    #[test]
    fn a_new_volume_in_an_lvm_pool_is_settled_raw_and_named_so() {
        let spec: VmSpec = serde_json::from_str(
            r#"{"name": "db", "vcpus": 1, "memory_mib": 64,
                "disks": [{"target": "vda", "source": {"new_volume": {"pool": "lvm", "size_gib": 5}}},
                          {"target": "vdb", "source": {"new_volume": {"pool": "dir", "size_gib": 1}}}]}"#,
        )
        .unwrap();
        let settled = spec
            .with_pool_formats(|pool| {
                Some(pool == "lvm")
                    .filter(|lvm| *lvm)
                    .map(|_| ImageFormat::Raw)
            })
            .unwrap();
        let volumes = settled.new_volumes();
        assert_eq!(
            volumes
                .iter()
                .map(|volume| (volume.name.as_str(), volume.format))
                .collect::<Vec<_>>(),
            [
                ("db-vda.img", ImageFormat::Raw),
                ("db-vdb.qcow2", ImageFormat::Qcow2)
            ]
        );
    }

    #[test]
    fn a_qcow2_volume_asked_for_in_an_lvm_pool_is_refused_naming_the_field() {
        let spec: VmSpec = serde_json::from_str(
            r#"{"name": "db", "vcpus": 1, "memory_mib": 64,
                "disks": [{"target": "vda", "source": {"new_volume":
                    {"pool": "lvm", "size_gib": 5, "format": "qcow2"}}}]}"#,
        )
        .unwrap();
        let errors = spec
            .with_pool_formats(|_| Some(ImageFormat::Raw))
            .unwrap_err();
        assert_eq!(errors.errors()[0].field(), "disks[0].source.format");
        assert_eq!(
            errors.to_string(),
            "invalid VM spec: disks[0].source.format: the pool lvm holds raw volumes only, \
             not qcow2"
        );
    }
}
