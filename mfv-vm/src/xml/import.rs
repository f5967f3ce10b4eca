//! Reading libvirt domain XML into a [`VmSpec`], keeping what it cannot express.

use std::path::PathBuf;

use uuid::Uuid;

use super::generate::default_features;
use super::tree::{self, Element};
use super::{ImportedDomain, METADATA_NAMESPACE, XmlError};
use crate::{
    BootDevice, DiskBus, DiskSource, DiskSpec, ExtraXml, Firmware, ImageFormat, KernelBoot,
    NicModel, NicSource, NicSpec, VmSpec, VncSpec,
};

const MIB: u128 = 1024 * 1024;

pub(super) fn domain(xml: &str) -> Result<ImportedDomain, XmlError> {
    let root = tree::parse(xml).map_err(|error| XmlError::Malformed {
        reason: error.to_string(),
    })?;
    if root.name != "domain" {
        return Err(XmlError::NotADomain { found: root.name });
    }
    let mut importer = Importer {
        scope: declarations(&root, &[]),
        spec: VmSpec {
            name: String::new(),
            uuid: None,
            vcpus: 1,
            memory_mib: 0,
            firmware: Firmware::Bios,
            disks: Vec::new(),
            cdrom: None,
            nics: Vec::new(),
            vnc: VncSpec::NONE,
            serial_console: false,
            kernel_boot: None,
            boot_order: Vec::new(),
            autostart: false,
            description: None,
            tags: Vec::new(),
            extra_xml: ExtraXml::default(),
        },
        preserved: Vec::new(),
        dropped: Vec::new(),
        boot_orders: Vec::new(),
        os_boot: Vec::new(),
        new_volumes: Vec::new(),
    };
    let mut name = None;
    let mut memory_mib = None;
    let mut current_memory_mib = None;
    for element in root.elements() {
        match element.name.as_str() {
            "name" => name = Some(element.text_content()),
            "uuid" => {
                let text = element.text_content();
                let uuid = Uuid::parse_str(&text).map_err(|_| XmlError::InvalidValue {
                    path: "domain/uuid".into(),
                    value: text.clone(),
                    problem: "is not a UUID",
                })?;
                importer.spec.uuid = Some(uuid);
            }
            "description" => importer.spec.description = Some(element.text_content()),
            "metadata" => importer.metadata(element)?,
            "memory" => memory_mib = Some(importer.memory(element, "domain/memory")?),
            "currentMemory" => {
                current_memory_mib = Some(importer.memory(element, "domain/currentMemory")?);
            }
            "vcpu" => importer.vcpu(element)?,
            "os" => importer.os(element),
            "devices" => importer.devices(element)?,
            "features" if *element == default_features() => {}
            "cpu" if is_host_passthrough(element) => {}
            "seclabel" => importer
                .dropped
                .push("domain/seclabel (security labels are the host's)".into()),
            _ => importer.keep(Keep::Domain, element, format!("domain/{}", element.name)),
        }
    }
    importer.spec.name = name.ok_or(XmlError::MissingElement {
        path: "domain/name",
    })?;
    importer.spec.memory_mib = memory_mib.ok_or(XmlError::MissingElement {
        path: "domain/memory",
    })?;
    if let Some(current) = current_memory_mib.filter(|mib| *mib != importer.spec.memory_mib) {
        importer.dropped.push(format!(
            "domain/currentMemory ({current} MiB; the VM gets all of domain/memory)"
        ));
    }
    importer.finish();
    Ok(ImportedDomain {
        spec: importer.spec,
        preserved: importer.preserved,
        dropped: importer.dropped,
    })
}

/// Which list of [`ExtraXml`] a kept element goes to.
#[derive(Debug, Clone, Copy)]
enum Keep {
    Domain,
    Devices,
    Metadata,
}

struct Importer {
    /// Namespace declarations in scope, innermost last.
    scope: Vec<(String, String)>,
    spec: VmSpec,
    preserved: Vec<String>,
    dropped: Vec<String>,
    /// `<boot order>` of modelled devices.
    boot_orders: Vec<(u32, BootDevice)>,
    /// `<os><boot dev>` values, in order.
    os_boot: Vec<String>,
    /// `<mfv:new-volume>`: (target, pool, size in GiB).
    new_volumes: Vec<(String, String, u64)>,
}

impl Importer {
    /// Keeps `element` verbatim, declaring the namespaces it uses from the scope.
    fn keep(&mut self, list: Keep, element: &Element, label: String) {
        self.keep_in_scope(list, element, label, &self.scope.clone());
    }

    fn keep_in_scope(
        &mut self,
        list: Keep,
        element: &Element,
        label: String,
        scope: &[(String, String)],
    ) {
        let mut element = element.clone();
        for prefix in element.undeclared_prefixes() {
            let Some((_, uri)) = scope.iter().rev().find(|(known, _)| *known == prefix) else {
                self.dropped.push(format!(
                    "{label} (namespace prefix {prefix:?} is not declared)"
                ));
                return;
            };
            let attribute = (format!("xmlns:{prefix}"), uri.clone());
            element.attributes.push(attribute);
        }
        let text = tree::write(&element, false);
        let extra = &mut self.spec.extra_xml;
        match list {
            Keep::Domain => extra.domain.push(text),
            Keep::Devices => extra.devices.push(text),
            Keep::Metadata => extra.metadata.push(text),
        }
        self.preserved.push(label);
    }

    fn metadata(&mut self, metadata: &Element) -> Result<(), XmlError> {
        let scope = declarations(metadata, &self.scope);
        for element in metadata.elements() {
            let inner = declarations(element, &scope);
            let uri = element.prefix().and_then(|prefix| {
                inner
                    .iter()
                    .rev()
                    .find(|(known, _)| known == prefix)
                    .map(|(_, uri)| uri.as_str())
            });
            if uri == Some(METADATA_NAMESPACE) && element.local_name() == "vm" {
                self.own_metadata(element)?;
            } else {
                self.keep_in_scope(
                    Keep::Metadata,
                    element,
                    format!("metadata/{}", element.name),
                    &scope,
                );
            }
        }
        Ok(())
    }

    fn own_metadata(&mut self, vm: &Element) -> Result<(), XmlError> {
        for element in vm.elements() {
            match element.local_name() {
                "autostart" => {
                    let text = element.text_content();
                    self.spec.autostart = match text.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(XmlError::InvalidValue {
                                path: "metadata/vm/autostart".into(),
                                value: text,
                                problem: "is neither true nor false",
                            });
                        }
                    };
                }
                "tag" => self.spec.tags.push(element.text_content()),
                "new-volume" => {
                    let size = element.get("size-gib").unwrap_or_default();
                    let size_gib = size.parse().map_err(|_| XmlError::InvalidValue {
                        path: "metadata/vm/new-volume/@size-gib".into(),
                        value: size.to_owned(),
                        problem: "is not a number",
                    })?;
                    self.new_volumes.push((
                        element.get("target").unwrap_or_default().to_owned(),
                        element.get("pool").unwrap_or_default().to_owned(),
                        size_gib,
                    ));
                }
                other => self.dropped.push(format!("metadata/vm/{other}")),
            }
        }
        Ok(())
    }

    /// A memory amount in MiB, from a value and libvirt's `unit` attribute (KiB when
    /// absent). Amounts that are not whole MiB are rounded down.
    fn memory(&mut self, element: &Element, path: &str) -> Result<u64, XmlError> {
        let text = element.text_content();
        let invalid = |value: String, problem| XmlError::InvalidValue {
            path: path.to_owned(),
            value,
            problem,
        };
        let amount: u128 = text
            .parse()
            .map_err(|_| invalid(text.clone(), "is not a number"))?;
        let unit = element.get("unit").unwrap_or("KiB");
        let scale: u128 = match unit {
            "b" | "bytes" => 1,
            "KB" => 1000,
            "k" | "KiB" => 1024,
            "MB" => 1000_u128.pow(2),
            "M" | "MiB" => MIB,
            "GB" => 1000_u128.pow(3),
            "G" | "GiB" => MIB * 1024,
            "TB" => 1000_u128.pow(4),
            "T" | "TiB" => MIB * 1024 * 1024,
            _ => return Err(invalid(unit.to_owned(), "is not a memory unit")),
        };
        let bytes = amount.saturating_mul(scale);
        let mib = u64::try_from(bytes / MIB).map_err(|_| invalid(text.clone(), "is too large"))?;
        if bytes % MIB != 0 {
            self.dropped
                .push(format!("{path}: {text} {unit} rounded down to {mib} MiB"));
        }
        Ok(mib)
    }

    fn vcpu(&mut self, element: &Element) -> Result<(), XmlError> {
        let text = element.text_content();
        self.spec.vcpus = text.parse().map_err(|_| XmlError::InvalidValue {
            path: "domain/vcpu".into(),
            value: text.clone(),
            problem: "is not a number",
        })?;
        if let Some(current) = element.get("current").filter(|current| *current != text) {
            self.dropped.push(format!(
                "domain/vcpu current={current} (all {text} vCPUs are online)"
            ));
        }
        Ok(())
    }

    fn os(&mut self, os: &Element) {
        if os.get("firmware") == Some("efi") {
            self.spec.firmware = Firmware::Uefi;
        }
        let mut kernel = None;
        let mut initrd = None;
        let mut cmdline = None;
        for element in os.elements() {
            match element.name.as_str() {
                "type" => {
                    let machine = element.get("machine").unwrap_or("q35");
                    if !(machine == "q35" || machine.starts_with("pc-q35")) {
                        self.dropped
                            .push(format!("os/type machine={machine} (q35 is used)"));
                    }
                    if let Some(arch) = element.get("arch").filter(|arch| *arch != "x86_64") {
                        self.dropped
                            .push(format!("os/type arch={arch} (x86_64 is used)"));
                    }
                }
                "loader" => self.spec.firmware = Firmware::Uefi,
                // The variable store's path is the host's; libvirt keeps the file.
                "nvram" | "firmware" => {}
                "kernel" => kernel = Some(PathBuf::from(element.text_content())),
                "initrd" => initrd = Some(PathBuf::from(element.text_content())),
                "cmdline" => cmdline = Some(element.text_content()),
                "boot" => self
                    .os_boot
                    .push(element.get("dev").unwrap_or_default().to_owned()),
                other => self.dropped.push(format!("os/{other}")),
            }
        }
        match kernel {
            Some(kernel) => {
                self.spec.kernel_boot = Some(KernelBoot {
                    kernel,
                    initrd,
                    cmdline,
                });
            }
            None if initrd.is_some() || cmdline.is_some() => self
                .dropped
                .push("os/initrd and os/cmdline (no os/kernel)".into()),
            None => {}
        }
    }

    fn devices(&mut self, devices: &Element) -> Result<(), XmlError> {
        let outer = self.scope.clone();
        self.scope = declarations(devices, &outer);
        let serial = devices
            .elements()
            .find(|element| element.name == "serial" && is_pty_serial(element));
        for element in devices.elements() {
            let label = || match element.find("target").and_then(|target| target.get("dev")) {
                Some(dev) if element.name == "disk" => format!("devices/disk[{dev}]"),
                _ => format!("devices/{}", element.name),
            };
            let modelled = match element.name.as_str() {
                "emulator" => true,
                "disk" => self.disk(element)?,
                "interface" => self.nic(element)?,
                "serial" if serial.is_some_and(|first| std::ptr::eq(first, element)) => {
                    self.spec.serial_console = true;
                    true
                }
                "console" => serial.is_some() && is_pty_serial_console(element),
                "graphics" => self.vnc(element),
                _ => false,
            };
            if !modelled {
                self.keep(Keep::Devices, element, label());
            }
        }
        self.scope = outer;
        Ok(())
    }

    /// Models a disk or CD-ROM drive; false when it holds more than the spec can say.
    ///
    /// A running VM's definition adds what libvirt knows of the drive in use: an `alias`, an
    /// `address`, an `index` on the source and an empty `backingStore` (no backing chain);
    /// a `backingStore` that names a backing image is more than the spec can say.
    fn disk(&mut self, disk: &Element) -> Result<bool, XmlError> {
        let device = disk.get("device").unwrap_or("disk");
        let no_backing_chain = disk
            .find("backingStore")
            .is_none_or(|store| store.attributes.is_empty() && store.elements().next().is_none());
        let only_known = only_attributes(disk, &["type", "device"])
            && no_backing_chain
            && only_children(
                disk,
                &[
                    "driver",
                    "source",
                    "target",
                    "boot",
                    "address",
                    "alias",
                    "readonly",
                    "backingStore",
                ],
            );
        let Some(target) = disk.find("target") else {
            return Ok(false);
        };
        let format = match disk.find("driver") {
            None => Some(ImageFormat::Raw),
            Some(driver) if only_attributes(driver, &["name", "type"]) => {
                match (driver.get("name"), driver.get("type")) {
                    (Some("qemu") | None, Some("qcow2")) => Some(ImageFormat::Qcow2),
                    (Some("qemu") | None, Some("raw") | None) => Some(ImageFormat::Raw),
                    _ => None,
                }
            }
            Some(_) => None,
        };
        let (true, Some(format), Some(source)) = (only_known, format, disk.find("source")) else {
            return Ok(false);
        };
        let boot = boot_order(disk)?;
        match (device, disk.get("type")) {
            ("cdrom", Some("file")) if self.spec.cdrom.is_none() => {
                let Some(file) = source.get("file") else {
                    return Ok(false);
                };
                self.spec.cdrom = Some(file.into());
                if let Some(order) = boot {
                    self.boot_orders.push((order, BootDevice::Cdrom));
                }
                Ok(true)
            }
            ("disk", Some(disk_type)) if disk.find("readonly").is_none() => {
                let bus = match target.get("bus") {
                    Some("virtio") => DiskBus::Virtio,
                    Some("sata") => DiskBus::Sata,
                    _ => return Ok(false),
                };
                let source = match (disk_type, source.get("file"), source.get("pool")) {
                    ("file", Some(file), _) => DiskSource::Image {
                        path: file.into(),
                        format,
                    },
                    ("volume", _, Some(pool)) => DiskSource::Volume {
                        pool: pool.to_owned(),
                        volume: source.get("volume").unwrap_or_default().to_owned(),
                        format,
                    },
                    _ => return Ok(false),
                };
                let (Some(dev), true) =
                    (target.get("dev"), only_attributes(target, &["dev", "bus"]))
                else {
                    return Ok(false);
                };
                if let Some(order) = boot {
                    self.boot_orders
                        .push((order, BootDevice::Disk(dev.to_owned())));
                }
                self.spec.disks.push(DiskSpec {
                    target: dev.to_owned(),
                    bus,
                    source,
                });
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Models a NIC; false when it holds more than the spec can say.
    fn nic(&mut self, interface: &Element) -> Result<bool, XmlError> {
        let known = only_attributes(interface, &["type"])
            && only_children(
                interface,
                &[
                    "mac", "source", "model", "boot", "address", "alias", "target",
                ],
            );
        let source = interface.find("source");
        let source = match (interface.get("type"), source) {
            (Some("bridge"), Some(source)) if only_attributes(source, &["bridge"]) => source
                .get("bridge")
                .map(|name| NicSource::Bridge(name.into())),
            (Some("network"), Some(source))
                if only_attributes(source, &["network", "portid", "bridge"]) =>
            {
                source
                    .get("network")
                    .map(|name| NicSource::Network(name.into()))
            }
            _ => None,
        };
        let model = match interface.find("model").and_then(|model| model.get("type")) {
            Some("virtio") => Some(NicModel::Virtio),
            Some("e1000") => Some(NicModel::E1000),
            Some("rtl8139") => Some(NicModel::Rtl8139),
            _ => None,
        };
        let (true, Some(source), Some(model)) = (known, source, model) else {
            return Ok(false);
        };
        if let Some(order) = boot_order(interface)? {
            self.boot_orders
                .push((order, BootDevice::Nic(self.spec.nics.len())));
        }
        self.spec.nics.push(NicSpec {
            source,
            model,
            mac: interface
                .find("mac")
                .and_then(|mac| mac.get("address"))
                .map(str::to_owned),
        });
        Ok(true)
    }

    /// Models a VNC display listening nowhere, or a password-protected one on an automatic
    /// port of the loopback address; false for any other display.
    fn vnc(&mut self, graphics: &Element) -> bool {
        if self.spec.vnc.enabled
            || graphics.get("type") != Some("vnc")
            || !only_attributes(graphics, &["type", "port", "autoport", "listen", "passwd"])
            || !only_children(graphics, &["listen"])
        {
            return false;
        }
        let automatic_port =
            graphics.get("autoport") == Some("yes") || graphics.get("port") == Some("-1");
        let loopback = |address: Option<&str>| matches!(address, Some("127.0.0.1" | "localhost"));
        let listen_attribute = graphics.get("listen");
        let listens_on_loopback = (listen_attribute.is_some() || graphics.find("listen").is_some())
            && listen_attribute.is_none_or(|address| loopback(Some(address)))
            && graphics.elements().all(|listen| {
                listen.get("type") == Some("address") && loopback(listen.get("address"))
            });
        let listens_nowhere = graphics.get("listen").is_none()
            && graphics.elements().count() == 1
            && graphics
                .elements()
                .all(|listen| listen.get("type") == Some("none") && listen.attributes.len() == 1);
        match graphics.get("passwd") {
            Some(password) if automatic_port && listens_on_loopback => {
                self.spec.vnc = VncSpec {
                    enabled: true,
                    password: Some(password.to_owned()),
                };
                true
            }
            None if listens_nowhere => {
                self.spec.vnc = VncSpec::default();
                true
            }
            _ => false,
        }
    }

    /// Resolves boot order and new-volume records once every element is read.
    fn finish(&mut self) {
        for disk in &mut self.spec.disks {
            let DiskSource::Volume {
                pool,
                volume,
                format,
            } = &disk.source
            else {
                continue;
            };
            let owned = self
                .new_volumes
                .iter()
                .find(|(target, owned_pool, _)| *target == disk.target && owned_pool == pool);
            let owned = owned.filter(|_| *volume == disk.volume_name(&self.spec.name));
            if let Some((_, _, size_gib)) = owned {
                disk.source = DiskSource::NewVolume {
                    pool: pool.clone(),
                    size_gib: *size_gib,
                    // qcow2, the default, is left out as a spec leaves it out.
                    format: Some(*format).filter(|format| *format != ImageFormat::Qcow2),
                };
            }
        }

        self.boot_orders.sort_by_key(|(order, _)| *order);
        let mut order: Vec<BootDevice> = self
            .boot_orders
            .drain(..)
            .map(|(_, device)| device)
            .collect();
        if order.is_empty() {
            for dev in &self.os_boot {
                let device = match dev.as_str() {
                    "cdrom" if self.spec.cdrom.is_some() => Some(BootDevice::Cdrom),
                    // libvirt adds `hd` to domains without per-device boot orders.
                    "hd" if self.spec.disks.is_empty() => continue,
                    "hd" => self
                        .spec
                        .disks
                        .first()
                        .map(|disk| BootDevice::Disk(disk.target.clone())),
                    "network" if !self.spec.nics.is_empty() => Some(BootDevice::Nic(0)),
                    _ => None,
                };
                match device {
                    Some(device) => order.push(device),
                    None => self.dropped.push(format!("os/boot dev={dev}")),
                }
            }
        }
        if order.is_empty() || order == self.spec.effective_boot_order() {
            self.spec.boot_order = Vec::new();
        } else {
            self.spec.boot_order = order;
        }
    }
}

/// The namespace declarations in scope inside `element`: `outer` and its own.
fn declarations(element: &Element, outer: &[(String, String)]) -> Vec<(String, String)> {
    let mut scope = outer.to_vec();
    scope.extend(
        element
            .namespace_declarations()
            .map(|(prefix, uri)| (prefix.to_owned(), uri.to_owned())),
    );
    scope
}

fn only_attributes(element: &Element, known: &[&str]) -> bool {
    element
        .attributes
        .iter()
        .all(|(key, _)| known.contains(&key.as_str()))
}

fn only_children(element: &Element, known: &[&str]) -> bool {
    element
        .elements()
        .all(|child| known.contains(&child.name.as_str()))
}

fn boot_order(device: &Element) -> Result<Option<u32>, XmlError> {
    let Some(order) = device.find("boot").and_then(|boot| boot.get("order")) else {
        return Ok(None);
    };
    order.parse().map(Some).map_err(|_| XmlError::InvalidValue {
        path: format!("devices/{}/boot/@order", device.name),
        value: order.to_owned(),
        problem: "is not a number",
    })
}

fn is_host_passthrough(cpu: &Element) -> bool {
    cpu.get("mode") == Some("host-passthrough")
        && cpu.children.is_empty()
        && only_attributes(cpu, &["mode", "check", "migratable"])
}

/// `<serial type='pty'>` on port 0, with nothing the spec cannot say.
fn is_pty_serial(serial: &Element) -> bool {
    serial.get("type") == Some("pty")
        && only_attributes(serial, &["type"])
        && only_children(serial, &["target", "source", "alias"])
        && serial
            .find("target")
            .is_none_or(|target| matches!(target.get("port"), None | Some("0")))
}

/// `<console type='pty'>` showing serial port 0.
fn is_pty_serial_console(console: &Element) -> bool {
    console.get("type") == Some("pty")
        && only_attributes(console, &["type", "tty"])
        && only_children(console, &["target", "source", "alias"])
        && console.find("target").is_none_or(|target| {
            matches!(target.get("type"), None | Some("serial"))
                && matches!(target.get("port"), None | Some("0"))
        })
}
