//! Checking a [`VmSpec`]: every problem at once, each naming its field.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use uuid::Uuid;

use crate::{BootDevice, DiskBus, DiskSource, ImageFormat, MacAddress, NicSource, VmSpec};

/// Longest VM, pool, network or tag name accepted.
const MAX_NAME_LEN: usize = 64;
/// Longest volume name accepted.
const MAX_VOLUME_NAME_LEN: usize = 255;
/// Longest description or kernel command line accepted.
const MAX_TEXT_LEN: usize = 4096;
/// Most characters of a VNC password VNC authentication uses.
const MAX_VNC_PASSWORD_LEN: usize = 8;
/// Most disks per VM.
const MAX_DISKS: usize = 64;
/// Most NICs per VM.
const MAX_NICS: usize = 32;
/// Most tags per VM.
const MAX_TAGS: usize = 32;
/// Longest Linux interface name (`IFNAMSIZ` minus the terminating NUL).
const MAX_BRIDGE_LEN: usize = 15;
/// What names may hold besides letters and digits.
const NAME_CHARSET: &str = "letters, digits, '.', '_' and '-'";

/// Bounds a spec is checked against. The defaults fit any x86-64 host; a caller that knows
/// the host narrows them (e.g. `max_vcpus` to its CPU count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecLimits {
    /// Most vCPUs per VM.
    pub max_vcpus: u32,
    /// Least memory per VM, MiB.
    pub min_memory_mib: u64,
    /// Most memory per VM, MiB.
    pub max_memory_mib: u64,
    /// Largest new volume, GiB.
    pub max_volume_gib: u64,
}

impl Default for SpecLimits {
    /// 255 vCPUs (QEMU's limit for the default machine types without an IOMMU), 32 MiB to
    /// 4 TiB of memory, volumes up to 64 TiB.
    fn default() -> Self {
        SpecLimits {
            max_vcpus: 255,
            min_memory_mib: 32,
            max_memory_mib: 4 * 1024 * 1024,
            max_volume_gib: 64 * 1024,
        }
    }
}

/// One problem with a spec. `field` is the path to the field, e.g. `name`, `vcpus`,
/// `disks[1].target`, `nics[0].mac`. Serializes with a `kind` tag in snake_case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpecError {
    /// A required text is empty.
    #[error("{field}: must not be empty")]
    Empty {
        /// The field.
        field: String,
    },
    /// A text is too long.
    #[error("{field}: {len} characters, at most {max} allowed")]
    TooLong {
        /// The field.
        field: String,
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A name holds characters outside its charset, or does not start with a letter or digit.
    #[error("{field}: {value:?} may hold only {allowed}, starting with a letter or digit")]
    InvalidName {
        /// The field.
        field: String,
        /// The value.
        value: String,
        /// The allowed characters, in words.
        allowed: &'static str,
    },
    /// A number is outside its bounds.
    #[error("{field}: {value} is outside {min}..={max}")]
    OutOfRange {
        /// The field.
        field: String,
        /// The value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A disk target does not name a device on the disk's bus.
    #[error("{field}: {value:?} is not a {bus} disk name ({prefix}a, {prefix}b, ...)")]
    DiskTargetNotOnBus {
        /// The field.
        field: String,
        /// The value.
        value: String,
        /// The disk's bus.
        bus: DiskBus,
        /// The names on that bus start with this.
        prefix: &'static str,
    },
    /// A new volume asks for a format its pool cannot hold.
    #[error("{field}: the pool {pool} holds {only} volumes only, not {asked}")]
    FormatNotInPool {
        /// The field.
        field: String,
        /// The pool.
        pool: String,
        /// The one format the pool holds.
        only: ImageFormat,
        /// The format asked for.
        asked: ImageFormat,
    },
    /// Two disks have the same target.
    #[error("{field}: {value:?} is already the target of {first}")]
    DuplicateDiskTarget {
        /// The field of the second use.
        field: String,
        /// The target.
        value: String,
        /// The field of the first use.
        first: String,
    },
    /// A host path is relative.
    #[error("{field}: {} must be an absolute path", value.display())]
    RelativePath {
        /// The field.
        field: String,
        /// The path.
        value: PathBuf,
    },
    /// A MAC address is not six pairs of hex digits.
    #[error("{field}: {value:?} is not a MAC address like 52:54:00:12:34:56")]
    MalformedMac {
        /// The field.
        field: String,
        /// The value.
        value: String,
    },
    /// A MAC address is well formed but cannot be a NIC's address.
    #[error("{field}: {value} {reason}")]
    UnusableMac {
        /// The field.
        field: String,
        /// The address.
        value: String,
        /// Why, e.g. `is a multicast address`.
        reason: &'static str,
    },
    /// Two NICs have the same MAC address.
    #[error("{field}: {value} is already the MAC address of {first}")]
    DuplicateMac {
        /// The field of the second use.
        field: String,
        /// The address.
        value: String,
        /// The field of the first use.
        first: String,
    },
    /// A list has more entries than allowed.
    #[error("{field}: {count} entries, at most {max} allowed")]
    TooMany {
        /// The field.
        field: String,
        /// How many there are.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A text holds a control character, which domain XML cannot carry.
    #[error("{field}: holds a control character")]
    ControlCharacter {
        /// The field.
        field: String,
    },
    /// A VNC password VNC cannot use as given.
    #[error("{field}: {reason}")]
    InvalidVncPassword {
        /// The field.
        field: String,
        /// Why, e.g. `must be at most 8 characters (VNC uses no more)`.
        reason: &'static str,
    },
    /// A boot order entry names a device the VM does not have.
    #[error("{field}: {value} is not a device of this VM")]
    UnknownBootDevice {
        /// The field.
        field: String,
        /// The device, e.g. `disk vdz`.
        value: String,
    },
    /// A device appears twice in the boot order.
    #[error("{field}: {value} is already in the boot order at {first}")]
    DuplicateBootDevice {
        /// The field of the second use.
        field: String,
        /// The device.
        value: String,
        /// The field of the first use.
        first: String,
    },
    /// A tag is given twice.
    #[error("{field}: {value:?} is already {first}")]
    DuplicateTag {
        /// The field of the second use.
        field: String,
        /// The tag.
        value: String,
        /// The field of the first use.
        first: String,
    },
    /// Another VM already has this name.
    #[error("{field}: a VM named {value:?} already exists")]
    NameTaken {
        /// The field.
        field: String,
        /// The name.
        value: String,
    },
    /// Another VM already has this UUID.
    #[error("{field}: {value} is already the UUID of VM {by:?}")]
    UuidTaken {
        /// The field.
        field: String,
        /// The UUID.
        value: Uuid,
        /// The VM that has it.
        by: String,
    },
    /// Another VM already has a NIC with this MAC address.
    #[error("{field}: {value} is already used by VM {by:?}")]
    MacInUse {
        /// The field.
        field: String,
        /// The address.
        value: String,
        /// The VM that uses it.
        by: String,
    },
}

impl SpecError {
    /// The path to the field the problem is about, e.g. `disks[1].target`.
    pub fn field(&self) -> &str {
        match self {
            SpecError::Empty { field }
            | SpecError::TooLong { field, .. }
            | SpecError::InvalidName { field, .. }
            | SpecError::OutOfRange { field, .. }
            | SpecError::DiskTargetNotOnBus { field, .. }
            | SpecError::FormatNotInPool { field, .. }
            | SpecError::DuplicateDiskTarget { field, .. }
            | SpecError::RelativePath { field, .. }
            | SpecError::MalformedMac { field, .. }
            | SpecError::UnusableMac { field, .. }
            | SpecError::DuplicateMac { field, .. }
            | SpecError::TooMany { field, .. }
            | SpecError::ControlCharacter { field }
            | SpecError::InvalidVncPassword { field, .. }
            | SpecError::UnknownBootDevice { field, .. }
            | SpecError::DuplicateBootDevice { field, .. }
            | SpecError::DuplicateTag { field, .. }
            | SpecError::NameTaken { field, .. }
            | SpecError::UuidTaken { field, .. }
            | SpecError::MacInUse { field, .. } => field,
        }
    }
}

/// Every problem found in a spec, in field order; never empty. Serializes as a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SpecErrors(Vec<SpecError>);

impl SpecErrors {
    /// `errors` as one refusal, `None` when there are none.
    pub(crate) fn from_errors(errors: Vec<SpecError>) -> Option<SpecErrors> {
        (!errors.is_empty()).then_some(SpecErrors(errors))
    }

    /// The problems.
    pub fn errors(&self) -> &[SpecError] {
        &self.0
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid VM spec: ")?;
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Another VM on the same host, as far as clashes with a new spec go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingVm {
    /// Its name.
    pub name: String,
    /// Its UUID, when known.
    pub uuid: Option<Uuid>,
    /// The MAC addresses of its NICs.
    pub macs: Vec<MacAddress>,
}

impl From<&VmSpec> for ExistingVm {
    /// The spec's name, UUID and the MAC addresses of its NICs that parse.
    fn from(spec: &VmSpec) -> Self {
        ExistingVm {
            name: spec.name.clone(),
            uuid: spec.uuid,
            macs: spec
                .nics
                .iter()
                .filter_map(|nic| nic.mac.as_deref()?.parse().ok())
                .collect(),
        }
    }
}

impl VmSpec {
    /// Checks the spec against `limits` and returns every problem found.
    ///
    /// MAC addresses must be unicast and not all zeros. Universally administered addresses
    /// are accepted: VMs moved from physical machines keep their vendor MAC.
    pub fn validate(&self, limits: &SpecLimits) -> Result<(), SpecErrors> {
        self.validate_among(limits, &[])
    }

    /// Like [`VmSpec::validate`], and also checks that no VM in `others` has the same
    /// name, UUID or a MAC address of this spec. When an existing VM is being changed,
    /// leave it out of `others`.
    pub fn validate_among(
        &self,
        limits: &SpecLimits,
        others: &[ExistingVm],
    ) -> Result<(), SpecErrors> {
        let mut errors = Vec::new();
        check_name(&mut errors, "name", &self.name, MAX_NAME_LEN);
        if let Some(other) = others.iter().find(|other| other.name == self.name) {
            errors.push(SpecError::NameTaken {
                field: "name".into(),
                value: other.name.clone(),
            });
        }
        let uuid_owner = self.uuid.and_then(|uuid| {
            others
                .iter()
                .find(|other| other.uuid == Some(uuid))
                .map(|other| (uuid, other))
        });
        if let Some((uuid, other)) = uuid_owner {
            errors.push(SpecError::UuidTaken {
                field: "uuid".into(),
                value: uuid,
                by: other.name.clone(),
            });
        }
        check_range(
            &mut errors,
            "vcpus",
            u64::from(self.vcpus),
            1,
            u64::from(limits.max_vcpus),
        );
        check_range(
            &mut errors,
            "memory_mib",
            self.memory_mib,
            limits.min_memory_mib,
            limits.max_memory_mib,
        );

        check_count(&mut errors, "disks", self.disks.len(), MAX_DISKS);
        let mut targets: HashMap<&str, String> = HashMap::new();
        for (index, disk) in self.disks.iter().enumerate() {
            let field = format!("disks[{index}].target");
            check_disk_target(&mut errors, &field, &disk.target, disk.bus);
            if let Some(first) = targets.get(disk.target.as_str()) {
                errors.push(SpecError::DuplicateDiskTarget {
                    field,
                    value: disk.target.clone(),
                    first: first.clone(),
                });
            } else {
                targets.insert(&disk.target, field);
            }
            match &disk.source {
                DiskSource::NewVolume { pool, size_gib, .. } => {
                    check_name(
                        &mut errors,
                        &format!("disks[{index}].source.pool"),
                        pool,
                        MAX_NAME_LEN,
                    );
                    check_range(
                        &mut errors,
                        &format!("disks[{index}].source.size_gib"),
                        *size_gib,
                        1,
                        limits.max_volume_gib,
                    );
                }
                DiskSource::Volume { pool, volume, .. } => {
                    check_name(
                        &mut errors,
                        &format!("disks[{index}].source.pool"),
                        pool,
                        MAX_NAME_LEN,
                    );
                    check_name(
                        &mut errors,
                        &format!("disks[{index}].source.volume"),
                        volume,
                        MAX_VOLUME_NAME_LEN,
                    );
                }
                DiskSource::Image { path, .. } => {
                    check_absolute(&mut errors, &format!("disks[{index}].source.path"), path);
                }
            }
        }

        if let Some(iso) = &self.cdrom {
            check_absolute(&mut errors, "cdrom", iso);
        }

        check_count(&mut errors, "nics", self.nics.len(), MAX_NICS);
        let mut macs: HashMap<MacAddress, String> = HashMap::new();
        for (index, nic) in self.nics.iter().enumerate() {
            match &nic.source {
                NicSource::Bridge(bridge) => check_name(
                    &mut errors,
                    &format!("nics[{index}].source.bridge"),
                    bridge,
                    MAX_BRIDGE_LEN,
                ),
                NicSource::Network(network) => check_name(
                    &mut errors,
                    &format!("nics[{index}].source.network"),
                    network,
                    MAX_NAME_LEN,
                ),
            }
            let Some(text) = &nic.mac else { continue };
            let field = format!("nics[{index}].mac");
            let Ok(mac) = text.parse::<MacAddress>() else {
                errors.push(SpecError::MalformedMac {
                    field,
                    value: text.clone(),
                });
                continue;
            };
            let reason = if mac.is_multicast() {
                Some("is a multicast address")
            } else if mac.is_zero() {
                Some("is all zeros")
            } else {
                None
            };
            if let Some(reason) = reason {
                errors.push(SpecError::UnusableMac {
                    field,
                    value: mac.to_string(),
                    reason,
                });
            } else if let Some(first) = macs.get(&mac) {
                errors.push(SpecError::DuplicateMac {
                    field,
                    value: mac.to_string(),
                    first: first.clone(),
                });
            } else if let Some(other) = others.iter().find(|other| other.macs.contains(&mac)) {
                errors.push(SpecError::MacInUse {
                    field,
                    value: mac.to_string(),
                    by: other.name.clone(),
                });
            } else {
                macs.insert(mac, field);
            }
        }

        if let Some(password) = &self.vnc.password {
            if self.vnc.enabled {
                check_vnc_password(&mut errors, "vnc.password", password);
            } else {
                errors.push(SpecError::InvalidVncPassword {
                    field: "vnc.password".to_owned(),
                    reason: "is set, but vnc.enabled is false: a VM without a VNC display has \
                             no password (remove it, or turn the display on)",
                });
            }
        }

        if let Some(boot) = &self.kernel_boot {
            check_absolute(&mut errors, "kernel_boot.kernel", &boot.kernel);
            if let Some(initrd) = &boot.initrd {
                check_absolute(&mut errors, "kernel_boot.initrd", initrd);
            }
            if let Some(cmdline) = &boot.cmdline {
                check_text(&mut errors, "kernel_boot.cmdline", cmdline, MAX_TEXT_LEN);
            }
        }

        let mut boot_devices: HashMap<&BootDevice, String> = HashMap::new();
        for (index, device) in self.boot_order.iter().enumerate() {
            let field = format!("boot_order[{index}]");
            let exists = match device {
                BootDevice::Cdrom => self.cdrom.is_some(),
                BootDevice::Disk(target) => self.disks.iter().any(|disk| disk.target == *target),
                BootDevice::Nic(nic) => *nic < self.nics.len(),
            };
            if !exists {
                errors.push(SpecError::UnknownBootDevice {
                    field,
                    value: device.to_string(),
                });
            } else if let Some(first) = boot_devices.get(device) {
                errors.push(SpecError::DuplicateBootDevice {
                    field,
                    value: device.to_string(),
                    first: first.clone(),
                });
            } else {
                boot_devices.insert(device, field);
            }
        }

        if let Some(description) = &self.description {
            check_text(&mut errors, "description", description, MAX_TEXT_LEN);
        }

        check_count(&mut errors, "tags", self.tags.len(), MAX_TAGS);
        let mut tags: HashMap<&str, String> = HashMap::new();
        for (index, tag) in self.tags.iter().enumerate() {
            let field = format!("tags[{index}]");
            check_name(&mut errors, &field, tag, MAX_NAME_LEN);
            if let Some(first) = tags.get(tag.as_str()) {
                errors.push(SpecError::DuplicateTag {
                    field,
                    value: tag.clone(),
                    first: first.clone(),
                });
            } else {
                tags.insert(tag, field);
            }
        }

        if errors.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors(errors))
        }
    }
}

fn check_count(errors: &mut Vec<SpecError>, field: &str, count: usize, max: usize) {
    if count > max {
        errors.push(SpecError::TooMany {
            field: field.to_owned(),
            count,
            max,
        });
    }
}

/// Text written into domain XML: XML 1.0 cannot hold control characters other than tab,
/// line feed and carriage return.
fn check_text(errors: &mut Vec<SpecError>, field: &str, value: &str, max: usize) {
    let len = value.chars().count();
    if len > max {
        errors.push(SpecError::TooLong {
            field: field.to_owned(),
            len,
            max,
        });
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        errors.push(SpecError::ControlCharacter {
            field: field.to_owned(),
        });
    }
}

/// VNC authentication uses at most 8 characters of the password; libvirt would silently
/// cut a longer one.
fn check_vnc_password(errors: &mut Vec<SpecError>, field: &str, value: &str) {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value.chars().count() > MAX_VNC_PASSWORD_LEN {
        Some("must be at most 8 characters (VNC uses no more)")
    } else if !value.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        Some("may hold only printable ASCII characters")
    } else {
        None
    };
    if let Some(reason) = reason {
        errors.push(SpecError::InvalidVncPassword {
            field: field.to_owned(),
            reason,
        });
    }
}

fn check_name(errors: &mut Vec<SpecError>, field: &str, value: &str, max: usize) {
    let len = value.chars().count();
    if len == 0 {
        errors.push(SpecError::Empty {
            field: field.to_owned(),
        });
        return;
    }
    if len > max {
        errors.push(SpecError::TooLong {
            field: field.to_owned(),
            len,
            max,
        });
    }
    let starts_well = value
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric());
    let charset_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !starts_well || !charset_ok {
        errors.push(SpecError::InvalidName {
            field: field.to_owned(),
            value: value.to_owned(),
            allowed: NAME_CHARSET,
        });
    }
}

fn check_range(errors: &mut Vec<SpecError>, field: &str, value: u64, min: u64, max: u64) {
    if !(min..=max).contains(&value) {
        errors.push(SpecError::OutOfRange {
            field: field.to_owned(),
            value,
            min,
            max,
        });
    }
}

/// libvirt names disks `vda`..`vdzz` on virtio and `sda`..`sdzz` on SATA.
fn check_disk_target(errors: &mut Vec<SpecError>, field: &str, value: &str, bus: DiskBus) {
    if value.is_empty() {
        errors.push(SpecError::Empty {
            field: field.to_owned(),
        });
        return;
    }
    let prefix = match bus {
        DiskBus::Virtio => "vd",
        DiskBus::Sata => "sd",
    };
    let letters_ok = value.strip_prefix(prefix).is_some_and(|letters| {
        (1..=2).contains(&letters.len()) && letters.bytes().all(|byte| byte.is_ascii_lowercase())
    });
    if !letters_ok {
        errors.push(SpecError::DiskTargetNotOnBus {
            field: field.to_owned(),
            value: value.to_owned(),
            bus,
            prefix,
        });
    }
}

fn check_absolute(errors: &mut Vec<SpecError>, field: &str, path: &Path) {
    if !path.is_absolute() {
        errors.push(SpecError::RelativePath {
            field: field.to_owned(),
            value: path.to_owned(),
        });
    }
    if path.to_string_lossy().chars().any(char::is_control) {
        errors.push(SpecError::ControlCharacter {
            field: field.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        DiskSpec, ExtraXml, Firmware, ImageFormat, KernelBoot, NicModel, NicSpec, VncSpec,
    };

    fn good_spec() -> VmSpec {
        VmSpec {
            name: "web-1".into(),
            vcpus: 2,
            memory_mib: 2048,
            disks: vec![
                DiskSpec {
                    target: "vda".into(),
                    bus: DiskBus::Virtio,
                    source: DiskSource::NewVolume {
                        pool: "default".into(),
                        size_gib: 20,
                        format: None,
                    },
                },
                DiskSpec {
                    target: "sda".into(),
                    bus: DiskBus::Sata,
                    source: DiskSource::Image {
                        path: "/var/lib/mfv/images/data.qcow2".into(),
                        format: ImageFormat::Qcow2,
                    },
                },
            ],
            cdrom: Some("/var/lib/mfv/iso/debian.iso".into()),
            nics: vec![NicSpec {
                source: NicSource::Bridge("br0".into()),
                model: NicModel::Virtio,
                mac: Some("52:54:00:12:34:56".into()),
            }],
            uuid: Some(Uuid::from_u128(1)),
            firmware: Firmware::Bios,
            vnc: VncSpec {
                enabled: true,
                password: Some("s3cret!".into()),
            },
            serial_console: true,
            kernel_boot: None,
            boot_order: vec![BootDevice::Cdrom, BootDevice::Nic(0)],
            autostart: true,
            description: Some("Web server\nsecond line\ttabbed".into()),
            tags: vec!["prod".into(), "web".into()],
            extra_xml: ExtraXml::default(),
        }
    }

    /// Validates `good_spec()` changed by `change` and compares the messages.
    fn check(change: impl FnOnce(&mut VmSpec), expected: &[&str]) {
        let mut spec = good_spec();
        change(&mut spec);
        let messages: Vec<String> = match spec.validate(&SpecLimits::default()) {
            Ok(()) => vec![],
            Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
        };
        assert_eq!(messages, expected);
    }

    #[test]
    fn a_good_spec_passes() {
        check(|_| {}, &[]);
    }

    #[test]
    fn name_empty() {
        check(|spec| spec.name.clear(), &["name: must not be empty"]);
    }

    #[test]
    fn name_too_long() {
        check(
            |spec| spec.name = "a".repeat(65),
            &["name: 65 characters, at most 64 allowed"],
        );
        check(|spec| spec.name = "a".repeat(64), &[]);
    }

    #[test]
    fn name_charset_and_first_character() {
        for name in [
            "web/1", "web 1", "-web", ".hidden", "..", "vm<1>", "wéb", "a'b",
        ] {
            check(
                |spec| spec.name = name.into(),
                &[&format!(
                    "name: {name:?} may hold only letters, digits, '.', '_' and '-', starting with a letter or digit"
                )],
            );
        }
        check(|spec| spec.name = "Web_1.test-2".into(), &[]);
    }

    #[test]
    fn vcpus_bounds() {
        check(|spec| spec.vcpus = 0, &["vcpus: 0 is outside 1..=255"]);
        check(|spec| spec.vcpus = 256, &["vcpus: 256 is outside 1..=255"]);
        check(|spec| spec.vcpus = 255, &[]);
    }

    #[test]
    fn memory_bounds() {
        check(
            |spec| spec.memory_mib = 31,
            &["memory_mib: 31 is outside 32..=4194304"],
        );
        check(
            |spec| spec.memory_mib = 4 * 1024 * 1024 + 1,
            &["memory_mib: 4194305 is outside 32..=4194304"],
        );
    }

    #[test]
    fn limits_narrowed_by_the_host() {
        let limits = SpecLimits {
            max_vcpus: 2,
            max_memory_mib: 1024,
            ..SpecLimits::default()
        };
        let mut spec = good_spec();
        spec.vcpus = 4;
        let errors = spec.validate(&limits).unwrap_err();
        let fields: Vec<&str> = errors.errors().iter().map(SpecError::field).collect();
        assert_eq!(fields, ["vcpus", "memory_mib"]);
    }

    #[test]
    fn disk_target_must_match_its_bus() {
        check(
            |spec| spec.disks[0].target = "sdb".into(),
            &["disks[0].target: \"sdb\" is not a virtio disk name (vda, vdb, ...)"],
        );
        check(
            |spec| spec.disks[1].target = "hda".into(),
            &["disks[1].target: \"hda\" is not a sata disk name (sda, sdb, ...)"],
        );
        for target in ["vd", "vdA", "vdabc", "vd1", "xvda"] {
            check(
                |spec| spec.disks[0].target = target.into(),
                &[&format!(
                    "disks[0].target: {target:?} is not a virtio disk name (vda, vdb, ...)"
                )],
            );
        }
        check(|spec| spec.disks[0].target = "vdaa".into(), &[]);
        check(
            |spec| spec.disks[0].target.clear(),
            &["disks[0].target: must not be empty"],
        );
    }

    #[test]
    fn duplicate_disk_targets() {
        check(
            |spec| {
                let mut third = spec.disks[0].clone();
                third.source = DiskSource::Image {
                    path: "/images/b.qcow2".into(),
                    format: ImageFormat::Raw,
                };
                spec.disks.push(third);
            },
            &["disks[2].target: \"vda\" is already the target of disks[0].target"],
        );
    }

    #[test]
    fn new_volume_pool_and_size() {
        check(
            |spec| {
                spec.disks[0].source = DiskSource::NewVolume {
                    pool: "my pool".into(),
                    size_gib: 0,
                    format: None,
                }
            },
            &[
                "disks[0].source.pool: \"my pool\" may hold only letters, digits, '.', '_' and '-', starting with a letter or digit",
                "disks[0].source.size_gib: 0 is outside 1..=65536",
            ],
        );
        check(
            |spec| {
                spec.disks[0].source = DiskSource::NewVolume {
                    pool: String::new(),
                    size_gib: 65537,
                    format: None,
                }
            },
            &[
                "disks[0].source.pool: must not be empty",
                "disks[0].source.size_gib: 65537 is outside 1..=65536",
            ],
        );
    }

    #[test]
    fn relative_paths() {
        check(
            |spec| {
                spec.disks[1].source = DiskSource::Image {
                    path: "images/data.qcow2".into(),
                    format: ImageFormat::Qcow2,
                };
                spec.cdrom = Some("debian.iso".into());
                spec.kernel_boot = Some(KernelBoot {
                    kernel: "vmlinuz".into(),
                    initrd: Some("initrd\u{7}.img".into()),
                    cmdline: None,
                });
            },
            &[
                "disks[1].source.path: images/data.qcow2 must be an absolute path",
                "cdrom: debian.iso must be an absolute path",
                "kernel_boot.kernel: vmlinuz must be an absolute path",
                "kernel_boot.initrd: initrd\u{7}.img must be an absolute path",
                "kernel_boot.initrd: holds a control character",
            ],
        );
    }

    #[test]
    fn bridge_and_network_names() {
        let bridge = |name: &'static str| {
            move |spec: &mut VmSpec| spec.nics[0].source = NicSource::Bridge(name.into())
        };
        check(
            bridge("br-with-a-long-name"),
            &["nics[0].source.bridge: 19 characters, at most 15 allowed"],
        );
        check(
            bridge("br/0"),
            &[
                "nics[0].source.bridge: \"br/0\" may hold only letters, digits, '.', '_' and '-', starting with a letter or digit",
            ],
        );
        check(bridge(""), &["nics[0].source.bridge: must not be empty"]);
        check(
            |spec| spec.nics[0].source = NicSource::Network("a-network-name-longer-than-15".into()),
            &[],
        );
        check(
            |spec| spec.nics[0].source = NicSource::Network("net work".into()),
            &[
                "nics[0].source.network: \"net work\" may hold only letters, digits, '.', '_' and '-', starting with a letter or digit",
            ],
        );
    }

    #[test]
    fn malformed_mac() {
        check(
            |spec| spec.nics[0].mac = Some("52:54:00:12:34".into()),
            &["nics[0].mac: \"52:54:00:12:34\" is not a MAC address like 52:54:00:12:34:56"],
        );
    }

    #[test]
    fn unusable_macs() {
        check(
            |spec| spec.nics[0].mac = Some("01:00:5E:00:00:01".into()),
            &["nics[0].mac: 01:00:5e:00:00:01 is a multicast address"],
        );
        check(
            |spec| spec.nics[0].mac = Some("ff:ff:ff:ff:ff:ff".into()),
            &["nics[0].mac: ff:ff:ff:ff:ff:ff is a multicast address"],
        );
        check(
            |spec| spec.nics[0].mac = Some("00:00:00:00:00:00".into()),
            &["nics[0].mac: 00:00:00:00:00:00 is all zeros"],
        );
        // Universally administered (vendor) addresses are accepted.
        check(
            |spec| spec.nics[0].mac = Some("00:16:3e:12:34:56".into()),
            &[],
        );
    }

    #[test]
    fn duplicate_macs_compare_case_insensitively() {
        check(
            |spec| {
                spec.nics.push(NicSpec {
                    source: NicSource::Bridge("br1".into()),
                    model: NicModel::E1000,
                    mac: Some("52:54:00:12:34:56".to_uppercase()),
                });
                spec.nics.push(NicSpec {
                    source: NicSource::Network("default".into()),
                    model: NicModel::E1000,
                    mac: None,
                });
            },
            &["nics[1].mac: 52:54:00:12:34:56 is already the MAC address of nics[0].mac"],
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let spec = VmSpec {
            name: String::new(),
            uuid: None,
            vcpus: 0,
            memory_mib: 0,
            firmware: Firmware::Bios,
            disks: vec![],
            cdrom: None,
            nics: vec![],
            vnc: VncSpec::NONE,
            serial_console: false,
            kernel_boot: None,
            boot_order: vec![],
            autostart: false,
            description: None,
            tags: vec![],
            extra_xml: ExtraXml::default(),
        };
        let errors = spec.validate(&SpecLimits::default()).unwrap_err();
        assert_eq!(
            errors.to_string(),
            "invalid VM spec: name: must not be empty; vcpus: 0 is outside 1..=255; \
             memory_mib: 0 is outside 32..=4194304"
        );
    }

    #[test]
    fn errors_serialize_with_kind_and_field() {
        let mut spec = good_spec();
        spec.vcpus = 0;
        spec.nics[0].mac = Some("nope".into());
        let errors = spec.validate(&SpecLimits::default()).unwrap_err();
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            serde_json::json!([
                {"kind": "out_of_range", "field": "vcpus", "value": 0, "min": 1, "max": 255},
                {"kind": "malformed_mac", "field": "nics[0].mac", "value": "nope"}
            ])
        );
        let errors_by_field: Vec<&str> = errors.errors().iter().map(SpecError::field).collect();
        assert_eq!(errors_by_field, ["vcpus", "nics[0].mac"]);
    }

    #[test]
    fn every_variant_names_its_field() {
        let field = || "f".to_owned();
        let variants = [
            SpecError::Empty { field: field() },
            SpecError::TooLong {
                field: field(),
                len: 2,
                max: 1,
            },
            SpecError::InvalidName {
                field: field(),
                value: "x".into(),
                allowed: NAME_CHARSET,
            },
            SpecError::OutOfRange {
                field: field(),
                value: 0,
                min: 1,
                max: 2,
            },
            SpecError::DiskTargetNotOnBus {
                field: field(),
                value: "x".into(),
                bus: DiskBus::Virtio,
                prefix: "vd",
            },
            SpecError::DuplicateDiskTarget {
                field: field(),
                value: "vda".into(),
                first: "g".into(),
            },
            SpecError::RelativePath {
                field: field(),
                value: "x".into(),
            },
            SpecError::MalformedMac {
                field: field(),
                value: "x".into(),
            },
            SpecError::UnusableMac {
                field: field(),
                value: "x".into(),
                reason: "r",
            },
            SpecError::DuplicateMac {
                field: field(),
                value: "x".into(),
                first: "g".into(),
            },
            SpecError::TooMany {
                field: field(),
                count: 2,
                max: 1,
            },
            SpecError::ControlCharacter { field: field() },
            SpecError::InvalidVncPassword {
                field: field(),
                reason: "r",
            },
            SpecError::UnknownBootDevice {
                field: field(),
                value: "x".into(),
            },
            SpecError::DuplicateBootDevice {
                field: field(),
                value: "x".into(),
                first: "g".into(),
            },
            SpecError::DuplicateTag {
                field: field(),
                value: "x".into(),
                first: "g".into(),
            },
            SpecError::NameTaken {
                field: field(),
                value: "x".into(),
            },
            SpecError::UuidTaken {
                field: field(),
                value: Uuid::nil(),
                by: "x".into(),
            },
            SpecError::MacInUse {
                field: field(),
                value: "x".into(),
                by: "x".into(),
            },
        ];
        for variant in variants {
            assert_eq!(variant.field(), "f");
            assert!(variant.to_string().starts_with("f: "), "{variant}");
        }
    }

    #[test]
    fn volume_sources() {
        check(
            |spec| {
                spec.disks[0].source = DiskSource::Volume {
                    pool: "default".into(),
                    volume: "debian-12.qcow2".into(),
                    format: ImageFormat::Qcow2,
                }
            },
            &[],
        );
        check(
            |spec| {
                spec.disks[0].source = DiskSource::Volume {
                    pool: "my pool".into(),
                    volume: "/etc/passwd".into(),
                    format: ImageFormat::Raw,
                }
            },
            &[
                "disks[0].source.pool: \"my pool\" may hold only letters, digits, '.', '_' and '-', starting with a letter or digit",
                "disks[0].source.volume: \"/etc/passwd\" may hold only letters, digits, '.', '_' and '-', starting with a letter or digit",
            ],
        );
    }

    #[test]
    fn too_many_devices_and_tags() {
        check(
            |spec| {
                spec.disks = (0..65)
                    .map(|index| DiskSpec {
                        target: format!(
                            "vd{}{}",
                            char::from(b'a' + index / 26),
                            char::from(b'a' + index % 26)
                        ),
                        bus: DiskBus::Virtio,
                        source: DiskSource::Image {
                            path: format!("/images/{index}.qcow2").into(),
                            format: ImageFormat::Qcow2,
                        },
                    })
                    .collect();
                spec.boot_order.clear();
                spec.nics = vec![spec.nics[0].clone(); 33];
                for nic in &mut spec.nics {
                    nic.mac = None;
                }
                spec.tags = (0..33).map(|index| format!("t{index}")).collect();
            },
            &[
                "disks: 65 entries, at most 64 allowed",
                "nics: 33 entries, at most 32 allowed",
                "tags: 33 entries, at most 32 allowed",
            ],
        );
    }

    #[test]
    fn vnc_passwords() {
        let password = |text: &str| {
            let text = text.to_owned();
            move |spec: &mut VmSpec| {
                spec.vnc = VncSpec {
                    enabled: true,
                    password: Some(text),
                }
            }
        };
        check(password(""), &["vnc.password: must not be empty"]);
        check(
            password("123456789"),
            &["vnc.password: must be at most 8 characters (VNC uses no more)"],
        );
        check(
            password("pässwd"),
            &["vnc.password: may hold only printable ASCII characters"],
        );
        check(
            password("a\tb"),
            &["vnc.password: may hold only printable ASCII characters"],
        );
        check(password("12 45 78"), &[]);
        check(|spec| spec.vnc = VncSpec::NONE, &[]);
        check(|spec| spec.vnc = VncSpec::default(), &[]);
        check(
            |spec| {
                spec.vnc = VncSpec {
                    enabled: false,
                    password: Some("pw".into()),
                }
            },
            &[
                "vnc.password: is set, but vnc.enabled is false: a VM without a VNC display has \
               no password (remove it, or turn the display on)",
            ],
        );
    }

    #[test]
    fn boot_order_names_devices_of_the_vm_once() {
        check(
            |spec| {
                spec.boot_order = vec![
                    BootDevice::Nic(0),
                    BootDevice::Disk("vdz".into()),
                    BootDevice::Nic(1),
                    BootDevice::Disk("sda".into()),
                    BootDevice::Nic(0),
                    BootDevice::Cdrom,
                ];
            },
            &[
                "boot_order[1]: disk vdz is not a device of this VM",
                "boot_order[2]: nic 1 is not a device of this VM",
                "boot_order[4]: nic 0 is already in the boot order at boot_order[0]",
            ],
        );
        check(
            |spec| spec.cdrom = None,
            &["boot_order[0]: cdrom is not a device of this VM"],
        );
    }

    #[test]
    fn texts_that_xml_cannot_carry() {
        check(
            |spec| spec.description = Some("bell \u{7}".into()),
            &["description: holds a control character"],
        );
        check(
            |spec| spec.description = Some("x".repeat(4097)),
            &["description: 4097 characters, at most 4096 allowed"],
        );
        check(
            |spec| {
                spec.kernel_boot = Some(KernelBoot {
                    kernel: "/boot/vmlinuz".into(),
                    initrd: None,
                    cmdline: Some("console=ttyS0\u{0}".into()),
                })
            },
            &["kernel_boot.cmdline: holds a control character"],
        );
    }

    #[test]
    fn tags_follow_name_rules_once_each() {
        check(
            |spec| spec.tags = vec!["web".into(), "two words".into(), "web".into()],
            &[
                "tags[1]: \"two words\" may hold only letters, digits, '.', '_' and '-', starting with a letter or digit",
                "tags[2]: \"web\" is already tags[0]",
            ],
        );
    }

    #[test]
    fn clashes_with_other_vms() {
        let spec = good_spec();
        let mut other = VmSpec {
            name: "db".into(),
            uuid: Some(Uuid::from_u128(2)),
            ..good_spec()
        };
        other.nics[0].mac = Some("52:54:00:00:00:99".into());
        let others = [ExistingVm::from(&other)];
        assert_eq!(spec.validate_among(&SpecLimits::default(), &others), Ok(()));

        let others = [ExistingVm {
            name: "web-1".into(),
            uuid: Some(Uuid::from_u128(1)),
            macs: vec!["52:54:00:12:34:56".parse().unwrap()],
        }];
        let errors = spec
            .validate_among(&SpecLimits::default(), &others)
            .unwrap_err();
        let messages: Vec<String> = errors.errors().iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "name: a VM named \"web-1\" already exists",
                "uuid: 00000000-0000-0000-0000-000000000001 is already the UUID of VM \"web-1\"",
                "nics[0].mac: 52:54:00:12:34:56 is already used by VM \"web-1\"",
            ]
        );
        assert_eq!(
            serde_json::to_value(&errors).unwrap()[1],
            serde_json::json!({"kind": "uuid_taken", "field": "uuid",
                               "value": "00000000-0000-0000-0000-000000000001", "by": "web-1"})
        );
    }

    #[test]
    fn existing_vms_from_specs_keep_only_parsable_macs() {
        let mut spec = good_spec();
        spec.nics.push(NicSpec {
            source: NicSource::Bridge("br0".into()),
            model: NicModel::Virtio,
            mac: Some("junk".into()),
        });
        let existing = ExistingVm::from(&spec);
        assert_eq!(existing.name, "web-1");
        assert_eq!(existing.uuid, Some(Uuid::from_u128(1)));
        assert_eq!(existing.macs, ["52:54:00:12:34:56".parse().unwrap()]);
    }
}
