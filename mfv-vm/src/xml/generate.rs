//! Writing a [`VmSpec`] as libvirt domain XML.

use std::path::Path;

use super::tree::{self, Element};
use super::{HostCapabilities, METADATA_NAMESPACE, XmlError};
use crate::{BootDevice, DiskSource, Firmware, NicSource, SpecLimits, VmSpec};

/// Children of `<domain>` written from the spec; [`crate::ExtraXml::domain`] must not
/// hold them.
pub(super) const SPEC_DOMAIN_ELEMENTS: [&str; 9] = [
    "name",
    "uuid",
    "description",
    "metadata",
    "memory",
    "currentMemory",
    "vcpu",
    "os",
    "devices",
];

/// The prefix of this crate's metadata element.
const METADATA_PREFIX: &str = "mfv";

/// The `<features>` every generated domain has unless [`crate::ExtraXml::domain`] brings
/// its own: ACPI (so a shutdown request reaches the guest) and the APIC.
pub(super) fn default_features() -> Element {
    Element::new("features")
        .child(Element::new("acpi"))
        .child(Element::new("apic"))
}

pub(super) fn domain_xml(spec: &VmSpec, host: &HostCapabilities) -> Result<String, XmlError> {
    spec.validate(&SpecLimits::default())?;
    let extra_domain = parse_extra("domain", &spec.extra_xml.domain)?;
    let extra_devices = parse_extra("devices", &spec.extra_xml.devices)?;
    let extra_metadata = parse_extra("metadata", &spec.extra_xml.metadata)?;
    for (index, element) in extra_domain.iter().enumerate() {
        if SPEC_DOMAIN_ELEMENTS.contains(&element.name.as_str()) {
            return Err(XmlError::InvalidExtraXml {
                field: format!("extra_xml.domain[{index}]"),
                reason: format!("<{}> is written from the spec", element.name),
            });
        }
    }
    for (index, element) in extra_metadata.iter().enumerate() {
        let own = element
            .namespace_declarations()
            .any(|(prefix, uri)| Some(prefix) == element.prefix() && uri == METADATA_NAMESPACE);
        if own {
            return Err(XmlError::InvalidExtraXml {
                field: format!("extra_xml.metadata[{index}]"),
                reason: format!("the namespace {METADATA_NAMESPACE} is written from the spec"),
            });
        }
    }

    for (index, element) in extra_devices.iter().enumerate() {
        let clash = disk_target(element).and_then(|target| {
            spec.disks
                .iter()
                .position(|disk| disk.target == target)
                .map(|disk| (target, disk))
        });
        if let Some((target, disk)) = clash {
            return Err(XmlError::InvalidExtraXml {
                field: format!("extra_xml.devices[{index}]"),
                reason: format!("disk target {target} is also disks[{disk}].target"),
            });
        }
    }

    let domain_type = if host.kvm_usable { "kvm" } else { "qemu" };
    let mut domain = Element::new("domain")
        .attr("type", domain_type)
        .child(Element::new("name").text(spec.name.as_str()));
    if let Some(uuid) = spec.uuid {
        domain.push(Element::new("uuid").text(uuid.hyphenated().to_string()));
    }
    if let Some(description) = &spec.description {
        domain.push(Element::new("description").text(description.as_str()));
    }
    let mut metadata = Element::new("metadata").child(own_metadata(spec));
    for element in extra_metadata {
        metadata.push(element);
    }
    domain.push(metadata);
    domain.push(
        Element::new("memory")
            .attr("unit", "MiB")
            .text(spec.memory_mib.to_string()),
    );
    domain.push(Element::new("vcpu").text(spec.vcpus.to_string()));
    domain.push(os(spec, host)?);

    let brings = |name: &str| extra_domain.iter().any(|element| element.name == name);
    if !brings("features") {
        domain.push(default_features());
    }
    if host.kvm_usable && !brings("cpu") {
        domain.push(Element::new("cpu").attr("mode", "host-passthrough"));
    }
    for element in extra_domain {
        domain.push(element);
    }

    domain.push(devices(spec, extra_devices));
    Ok(tree::write(&domain, true))
}

fn parse_extra(list: &str, fragments: &[String]) -> Result<Vec<Element>, XmlError> {
    fragments
        .iter()
        .enumerate()
        .map(|(index, fragment)| {
            let field = || format!("extra_xml.{list}[{index}]");
            let element = tree::parse(fragment).map_err(|error| XmlError::InvalidExtraXml {
                field: field(),
                reason: error.to_string(),
            })?;
            if let Some(prefix) = element.undeclared_prefixes().first() {
                return Err(XmlError::InvalidExtraXml {
                    field: field(),
                    reason: format!("uses the namespace prefix {prefix:?} without declaring it"),
                });
            }
            Ok(element)
        })
        .collect()
}

/// `<mfv:vm>`: what libvirt's own elements cannot hold.
fn own_metadata(spec: &VmSpec) -> Element {
    let qualified = |local: &str| format!("{METADATA_PREFIX}:{local}");
    let mut vm = Element::new(&qualified("vm"))
        .attr(&format!("xmlns:{METADATA_PREFIX}"), METADATA_NAMESPACE);
    vm.push(Element::new(&qualified("autostart")).text(spec.autostart.to_string()));
    for tag in &spec.tags {
        vm.push(Element::new(&qualified("tag")).text(tag.as_str()));
    }
    for disk in &spec.disks {
        if let DiskSource::NewVolume { pool, size_gib, .. } = &disk.source {
            vm.push(
                Element::new(&qualified("new-volume"))
                    .attr("target", disk.target.as_str())
                    .attr("pool", pool.as_str())
                    .attr("size-gib", size_gib.to_string()),
            );
        }
    }
    vm
}

fn os(spec: &VmSpec, host: &HostCapabilities) -> Result<Element, XmlError> {
    let mut os = Element::new("os").child(
        Element::new("type")
            .attr("arch", "x86_64")
            .attr("machine", "q35")
            .text("hvm"),
    );
    if spec.firmware == Firmware::Uefi {
        let ovmf = host.ovmf.as_ref().ok_or(XmlError::UefiFirmwareMissing)?;
        os.push(
            Element::new("loader")
                .attr("readonly", "yes")
                .attr("type", "pflash")
                .text(path_text(&ovmf.code)),
        );
        os.push(Element::new("nvram").attr("template", path_text(&ovmf.vars_template)));
    }
    if let Some(boot) = &spec.kernel_boot {
        os.push(Element::new("kernel").text(path_text(&boot.kernel)));
        if let Some(initrd) = &boot.initrd {
            os.push(Element::new("initrd").text(path_text(initrd)));
        }
        if let Some(cmdline) = &boot.cmdline {
            os.push(Element::new("cmdline").text(cmdline.as_str()));
        }
    }
    Ok(os)
}

fn devices(spec: &VmSpec, extra: Vec<Element>) -> Element {
    // Kept devices may have boot orders of their own: the spec's devices take the
    // remaining numbers, in the spec's order.
    let taken: Vec<u32> = extra
        .iter()
        .filter_map(|device| device.find("boot")?.get("order")?.parse().ok())
        .collect();
    let numbers = (1..).filter(|number| !taken.contains(number));
    let boot_order: Vec<(BootDevice, u32)> = spec
        .effective_boot_order()
        .into_iter()
        .zip(numbers)
        .collect();
    let boot_index = |device: &BootDevice| {
        boot_order
            .iter()
            .find(|(candidate, _)| candidate == device)
            .map(|(_, number)| Element::new("boot").attr("order", number.to_string()))
    };
    let mut devices = Element::new("devices");

    for disk in &spec.disks {
        let (disk_type, format, source) = match &disk.source {
            DiskSource::NewVolume { pool, .. } => (
                "volume",
                disk.source.format(),
                Element::new("source")
                    .attr("pool", pool.as_str())
                    .attr("volume", disk.volume_name(&spec.name)),
            ),
            DiskSource::Volume {
                pool,
                volume,
                format,
            } => (
                "volume",
                *format,
                Element::new("source")
                    .attr("pool", pool.as_str())
                    .attr("volume", volume.as_str()),
            ),
            DiskSource::Image { path, format } => (
                "file",
                *format,
                Element::new("source").attr("file", path_text(path)),
            ),
        };
        let mut element = Element::new("disk")
            .attr("type", disk_type)
            .attr("device", "disk")
            .child(
                Element::new("driver")
                    .attr("name", "qemu")
                    .attr("type", format.as_str()),
            )
            .child(source)
            .child(
                Element::new("target")
                    .attr("dev", disk.target.as_str())
                    .attr("bus", disk.bus.as_str()),
            );
        if let Some(boot) = boot_index(&BootDevice::Disk(disk.target.clone())) {
            element.push(boot);
        }
        devices.push(element);
    }

    if let Some(iso) = &spec.cdrom {
        let mut element = cdrom_element(&cdrom_target(spec, &extra), "sata", Some(iso));
        if let Some(boot) = boot_index(&BootDevice::Cdrom) {
            element.push(boot);
        }
        devices.push(element);
    }

    for (index, nic) in spec.nics.iter().enumerate() {
        let (nic_type, source) = match &nic.source {
            NicSource::Bridge(bridge) => ("bridge", Element::new("source").attr("bridge", bridge)),
            NicSource::Network(network) => {
                ("network", Element::new("source").attr("network", network))
            }
        };
        let mut element = Element::new("interface").attr("type", nic_type);
        if let Some(mac) = &nic.mac {
            // Validated: parses, and is written the way libvirt writes it (lowercase).
            let mac = mac
                .parse::<crate::MacAddress>()
                .map_or_else(|_| mac.clone(), |mac| mac.to_string());
            element.push(Element::new("mac").attr("address", mac));
        }
        element.push(source);
        element.push(Element::new("model").attr("type", nic.model.as_str()));
        if let Some(boot) = boot_index(&BootDevice::Nic(index)) {
            element.push(boot);
        }
        devices.push(element);
    }

    if spec.serial_console {
        devices.push(
            Element::new("serial")
                .attr("type", "pty")
                .child(Element::new("target").attr("port", "0")),
        );
        devices.push(
            Element::new("console").attr("type", "pty").child(
                Element::new("target")
                    .attr("type", "serial")
                    .attr("port", "0"),
            ),
        );
    }

    // A display without a password listens nowhere (the web console gets its socket from
    // libvirt); one with a password on a loopback port for desktop viewers (see VncSpec).
    if spec.vnc.enabled {
        let graphics = Element::new("graphics").attr("type", "vnc");
        devices.push(match &spec.vnc.password {
            Some(password) => graphics
                .attr("port", "-1")
                .attr("autoport", "yes")
                .attr("listen", "127.0.0.1")
                .attr("passwd", password.as_str())
                .child(
                    Element::new("listen")
                        .attr("type", "address")
                        .attr("address", "127.0.0.1"),
                ),
            None => graphics.child(Element::new("listen").attr("type", "none")),
        });
    }

    for element in extra {
        devices.push(element);
    }
    devices
}

/// A CD-ROM drive at `target` on `bus` holding the image `iso`, or empty.
fn cdrom_element(target: &str, bus: &str, iso: Option<&Path>) -> Element {
    let mut element = Element::new("disk")
        .attr("type", "file")
        .attr("device", "cdrom")
        .child(
            Element::new("driver")
                .attr("name", "qemu")
                .attr("type", "raw"),
        );
    if let Some(iso) = iso {
        element.push(Element::new("source").attr("file", path_text(iso)));
    }
    element
        .child(Element::new("target").attr("dev", target).attr("bus", bus))
        .child(Element::new("readonly"))
}

/// The `<disk>` XML of a CD-ROM drive at `target` on `bus` holding `iso`, or empty: what
/// libvirt's device update takes to change or eject the media.
pub(crate) fn cdrom_device_xml(target: &str, bus: &str, iso: Option<&Path>) -> String {
    tree::write(&cdrom_element(target, bus, iso), false)
}

/// The CD-ROM drive sits on the SATA bus at the first name no other disk uses.
fn cdrom_target(spec: &VmSpec, extra: &[Element]) -> String {
    let used = |name: &str| {
        spec.disks.iter().any(|disk| disk.target == name)
            || extra.iter().any(|device| disk_target(device) == Some(name))
    };
    let letters = (b'a'..=b'z').map(char::from);
    let names =
        letters
            .clone()
            .map(|letter| format!("sd{letter}"))
            .chain(letters.clone().flat_map(|first| {
                letters
                    .clone()
                    .map(move |second| format!("sd{first}{second}"))
            }));
    // There are 702 names and a valid spec has at most 64 disks, so a free one is found
    // unless hundreds of disks are kept verbatim; then libvirt reports the clash.
    let mut last = String::new();
    for name in names {
        if !used(&name) {
            return name;
        }
        last = name;
    }
    last
}

/// The target of a `<disk>` element.
fn disk_target(device: &Element) -> Option<&str> {
    if device.name != "disk" {
        return None;
    }
    device.find("target")?.get("dev")
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
