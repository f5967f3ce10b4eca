//! Devices on every bus as sysfs lists them under `bus/*/devices`, with modalias, ids and driver.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::sysfs::{link_basename, read_attribute, resolve_under};
use crate::{DEFAULT_SYSFS_ROOT, ProbeError, ProbeIssue};

/// One device on a bus: what coldplug needs to find its driver and what an inventory shows.
///
/// Ids are numbers as the bus defines them; fields a bus does not have are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// The bus, e.g. `pci`, `usb`, `virtio`, `scsi`, `platform`, `acpi`.
    pub bus: String,
    /// The device's name on its bus, e.g. `0000:00:03.0`, `1-1:1.0`, `virtio2`.
    pub name: String,
    /// The device directory relative to the sysfs root, e.g. `devices/pci0000:00/0000:00:03.0`.
    pub path: PathBuf,
    /// `DEVTYPE` from `uevent` where the bus has several kinds of device, e.g. `usb_device`
    /// and `usb_interface`, or `scsi_device`.
    pub devtype: Option<String>,
    /// The string drivers are matched against, e.g.
    /// `pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00`; `None` when the device has none.
    pub modalias: Option<String>,
    /// PCI `vendor`, USB `idVendor` (of the device an interface belongs to), virtio `vendor`.
    pub vendor_id: Option<u32>,
    /// PCI `device`, USB `idProduct` (of the device an interface belongs to), virtio `device`.
    pub device_id: Option<u32>,
    /// PCI `subsystem_vendor`.
    pub subsystem_vendor_id: Option<u32>,
    /// PCI `subsystem_device`.
    pub subsystem_device_id: Option<u32>,
    /// PCI `class` (24 bits: class, subclass, programming interface), USB `bDeviceClass` of a
    /// device or `bInterfaceClass` of an interface.
    pub class: Option<u32>,
    /// The bound driver, e.g. `e1000`; `None` while no driver drives the device.
    pub driver: Option<String>,
}

/// Every device found under `bus/*/devices`, sorted by bus and name, and what could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DeviceListing {
    /// The devices; an attribute that could not be read is `None` and has an entry in `issues`.
    pub devices: Vec<Device>,
    /// Unreadable buses, devices and attributes; the listing went on past each of them.
    pub issues: Vec<ProbeIssue>,
}

/// Lists the devices of this machine from [`DEFAULT_SYSFS_ROOT`].
pub fn list_devices() -> Result<DeviceListing, ProbeError> {
    list_devices_at(DEFAULT_SYSFS_ROOT)
}

/// Lists the devices on every bus under `<sysfs_root>/bus`.
///
/// Fails only when `<sysfs_root>/bus` cannot be listed; a bus, device or attribute that cannot
/// be read is recorded in [`DeviceListing::issues`] and the listing goes on.
pub fn list_devices_at(sysfs_root: impl AsRef<Path>) -> Result<DeviceListing, ProbeError> {
    let root = sysfs_root.as_ref();
    let mut listing = DeviceListing::default();
    for (bus, name) in device_names_at(root, &mut listing.issues)? {
        let link = root.join("bus").join(&bus).join("devices").join(&name);
        match read_device(root, &link, bus, name, &mut listing.issues) {
            Some(device) => listing.devices.push(device),
            None => continue,
        }
    }
    Ok(listing)
}

/// The `(bus, device name)` pairs under `<root>/bus/*/devices`, sorted. Cheap: reads directory
/// names only, so coldplug can poll it while it waits for the kernel.
pub(crate) fn device_names_at(
    root: &Path,
    issues: &mut Vec<ProbeIssue>,
) -> Result<BTreeSet<(String, String)>, ProbeError> {
    let bus_dir = root.join("bus");
    let mut names = BTreeSet::new();
    for bus in dir_names(&bus_dir)? {
        let devices_dir = bus_dir.join(&bus).join("devices");
        match dir_names(&devices_dir) {
            Ok(devices) => names.extend(devices.into_iter().map(|name| (bus.clone(), name))),
            Err(error) => issues.push(ProbeIssue::from_error(&error)),
        }
    }
    Ok(names)
}

/// The entry names of a directory.
fn dir_names(dir: &Path) -> Result<Vec<String>, ProbeError> {
    let read_dir_error = |source: io::Error| ProbeError::ReadDir {
        path: dir.to_owned(),
        source,
    };
    fs::read_dir(dir)
        .map_err(read_dir_error)?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_dir_error)
}

/// Reads one device through its link in `bus/<bus>/devices`; `None` (with an issue) when the
/// link leads nowhere, e.g. because the device went away while the listing ran.
fn read_device(
    root: &Path,
    link: &Path,
    bus: String,
    name: String,
    issues: &mut Vec<ProbeIssue>,
) -> Option<Device> {
    let mut note = |error: ProbeError| issues.push(ProbeIssue::from_error(&error));
    let path = match resolve_under(root, link) {
        Ok(Some(path)) => path,
        Ok(None) => {
            note(ProbeError::ReadAttribute {
                path: link.to_owned(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
            return None;
        }
        Err(error) => {
            note(error);
            return None;
        }
    };
    let dir = root.join(&path);

    let uevent = read_attribute(&dir.join("uevent"))
        .unwrap_or_else(|error| {
            note(error);
            None
        })
        .unwrap_or_default();
    let devtype = uevent_value(&uevent, "DEVTYPE");
    let modalias = uevent_value(&uevent, "MODALIAS").or_else(|| {
        optional_attribute(&dir.join("modalias")).unwrap_or_else(|error| {
            note(error);
            None
        })
    });
    let driver = link_basename(&dir.join("driver")).unwrap_or_else(|error| {
        note(error);
        None
    });

    let mut device = Device {
        bus,
        name,
        path,
        devtype,
        modalias,
        vendor_id: None,
        device_id: None,
        subsystem_vendor_id: None,
        subsystem_device_id: None,
        class: None,
        driver,
    };
    let mut id = |file: &str| {
        read_hex_id(&dir.join(file)).unwrap_or_else(|error| {
            note(error);
            None
        })
    };
    match device.bus.as_str() {
        "pci" => {
            device.vendor_id = id("vendor");
            device.device_id = id("device");
            device.subsystem_vendor_id = id("subsystem_vendor");
            device.subsystem_device_id = id("subsystem_device");
            device.class = id("class");
        }
        "virtio" => {
            device.vendor_id = id("vendor");
            device.device_id = id("device");
        }
        "usb" if device.devtype.as_deref() == Some("usb_interface") => {
            device.vendor_id = id("../idVendor");
            device.device_id = id("../idProduct");
            device.class = id("bInterfaceClass");
        }
        "usb" => {
            device.vendor_id = id("idVendor");
            device.device_id = id("idProduct");
            device.class = id("bDeviceClass");
        }
        _ => {}
    }
    Some(device)
}

/// The value of `KEY=value` in the text of a `uevent` file.
fn uevent_value(uevent: &str, key: &str) -> Option<String> {
    uevent.lines().find_map(|line| {
        let (line_key, value) = line.split_once('=')?;
        (line_key == key && !value.is_empty()).then(|| value.to_owned())
    })
}

/// An attribute that not every device has: missing or empty is `None`, not an error.
fn optional_attribute(path: &Path) -> Result<Option<String>, ProbeError> {
    match read_attribute(path) {
        Err(ProbeError::ReadAttribute { source, .. })
            if source.kind() == io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Ok(value) => Ok(value.filter(|value| !value.is_empty())),
        Err(error) => Err(error),
    }
}

/// Reads an id written in hexadecimal, with (`0x8086`, PCI and virtio) or without (`8086`,
/// USB) the `0x` prefix.
fn read_hex_id(path: &Path) -> Result<Option<u32>, ProbeError> {
    let Some(text) = read_attribute(path)? else {
        return Ok(None);
    };
    let digits = text.strip_prefix("0x").unwrap_or(&text);
    match u32::from_str_radix(digits, 16) {
        Ok(value) => Ok(Some(value)),
        Err(_) => Err(ProbeError::Malformed {
            path: path.to_owned(),
            value: text,
            expected: "a hexadecimal id",
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A fixture sysfs tree laid out like the kernel's: device directories under `devices/`,
    /// `bus/<bus>/devices/<name>` and `driver` are relative symlinks.
    pub(crate) struct FixtureSysfs {
        root: PathBuf,
        /// The temporary directory when this value owns the tree.
        _dir: Option<tempfile::TempDir>,
    }

    impl FixtureSysfs {
        pub(crate) fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("bus")).unwrap();
            FixtureSysfs {
                root: dir.path().to_owned(),
                _dir: Some(dir),
            }
        }

        /// The tree at `root`, owned elsewhere (e.g. for a fake loader that adds devices).
        pub(crate) fn at(root: &Path) -> Self {
            FixtureSysfs {
                root: root.to_owned(),
                _dir: None,
            }
        }

        pub(crate) fn root(&self) -> &Path {
            &self.root
        }

        /// Adds a device at `devices/<rel>` on `bus` with the given `uevent` lines and
        /// attributes; the device name is the last component of `rel`. Returns its directory.
        pub(crate) fn add(
            &self,
            bus: &str,
            rel: &str,
            uevent: &[&str],
            attributes: &[(&str, &str)],
        ) -> PathBuf {
            let root = self.root();
            let dir = root.join("devices").join(rel);
            fs::create_dir_all(&dir).unwrap();
            let mut text = uevent.join("\n");
            text.push('\n');
            fs::write(dir.join("uevent"), text).unwrap();
            for (name, value) in attributes {
                fs::write(dir.join(name), format!("{value}\n")).unwrap();
            }
            let devices = root.join("bus").join(bus).join("devices");
            fs::create_dir_all(&devices).unwrap();
            fs::create_dir_all(root.join("bus").join(bus).join("drivers")).unwrap();
            let name = rel.rsplit('/').next().unwrap();
            symlink(format!("../../../devices/{rel}"), devices.join(name)).unwrap();
            dir
        }

        /// Binds the device at `devices/<rel>` to `driver` of `bus`.
        pub(crate) fn bind(&self, bus: &str, rel: &str, driver: &str) {
            let root = self.root();
            let driver_dir = root.join("bus").join(bus).join("drivers").join(driver);
            fs::create_dir_all(driver_dir).unwrap();
            let up = "../".repeat(rel.split('/').count() + 1);
            symlink(
                format!("{up}bus/{bus}/drivers/{driver}"),
                root.join("devices").join(rel).join("driver"),
            )
            .unwrap();
        }
    }

    pub(crate) const E1000: &str = "MODALIAS=pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00";

    /// The devices of a small QEMU guest: an e1000, a virtio-pci function with its virtio
    /// device, a USB stick behind xhci (device and interface) and a SCSI disk.
    fn guest() -> FixtureSysfs {
        let sysfs = FixtureSysfs::new();
        sysfs.add(
            "pci",
            "pci0000:00/0000:00:03.0",
            &["PCI_CLASS=20000", "PCI_ID=8086:100E", E1000],
            &[
                ("vendor", "0x8086"),
                ("device", "0x100e"),
                ("subsystem_vendor", "0x1af4"),
                ("subsystem_device", "0x1100"),
                ("class", "0x020000"),
            ],
        );
        sysfs.bind("pci", "pci0000:00/0000:00:03.0", "e1000");
        sysfs.add(
            "pci",
            "pci0000:00/0000:00:04.0",
            &["MODALIAS=pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"],
            &[
                ("vendor", "0x1af4"),
                ("device", "0x1000"),
                ("subsystem_vendor", "0x1af4"),
                ("subsystem_device", "0x0001"),
                ("class", "0x020000"),
            ],
        );
        sysfs.bind("pci", "pci0000:00/0000:00:04.0", "virtio-pci");
        sysfs.add(
            "virtio",
            "pci0000:00/0000:00:04.0/virtio0",
            &["MODALIAS=virtio:d00000001v00001AF4"],
            &[("vendor", "0x1af4"), ("device", "0x0001")],
        );
        sysfs.add(
            "usb",
            "pci0000:00/0000:00:05.0/usb1/1-1",
            &["DEVTYPE=usb_device", "PRODUCT=46f4/1/0"],
            &[
                ("idVendor", "46f4"),
                ("idProduct", "0001"),
                ("bDeviceClass", "00"),
            ],
        );
        sysfs.add(
            "usb",
            "pci0000:00/0000:00:05.0/usb1/1-1/1-1:1.0",
            &[
                "DEVTYPE=usb_interface",
                "MODALIAS=usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00",
            ],
            &[("bInterfaceClass", "08")],
        );
        sysfs.add(
            "scsi",
            "pci0000:00/0000:00:05.0/usb1/1-1/1-1:1.0/host0/target0:0:0/0:0:0:0",
            &["DEVTYPE=scsi_device", "MODALIAS=scsi:t-0x00"],
            &[("vendor", "QEMU    "), ("type", "0")],
        );
        sysfs.add(
            "platform",
            "platform/serial8250",
            &["DRIVER=serial8250"],
            &[("modalias", "platform:serial8250")],
        );
        sysfs.bind("platform", "platform/serial8250", "serial8250");
        sysfs
    }

    fn find<'a>(listing: &'a DeviceListing, name: &str) -> &'a Device {
        listing
            .devices
            .iter()
            .find(|device| device.name == name)
            .unwrap_or_else(|| panic!("no device {name} in {listing:#?}"))
    }

    #[test]
    fn lists_every_bus_sorted_with_ids_and_drivers() {
        let sysfs = guest();
        let listing = list_devices_at(sysfs.root()).unwrap();
        assert!(listing.issues.is_empty(), "{:?}", listing.issues);
        let names: Vec<(&str, &str)> = listing
            .devices
            .iter()
            .map(|device| (device.bus.as_str(), device.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("pci", "0000:00:03.0"),
                ("pci", "0000:00:04.0"),
                ("platform", "serial8250"),
                ("scsi", "0:0:0:0"),
                ("usb", "1-1"),
                ("usb", "1-1:1.0"),
                ("virtio", "virtio0"),
            ]
        );
        assert_eq!(
            *find(&listing, "0000:00:03.0"),
            Device {
                bus: "pci".into(),
                name: "0000:00:03.0".into(),
                path: "devices/pci0000:00/0000:00:03.0".into(),
                devtype: None,
                modalias: Some(E1000.trim_start_matches("MODALIAS=").into()),
                vendor_id: Some(0x8086),
                device_id: Some(0x100e),
                subsystem_vendor_id: Some(0x1af4),
                subsystem_device_id: Some(0x1100),
                class: Some(0x02_00_00),
                driver: Some("e1000".into()),
            }
        );
        let virtio = find(&listing, "virtio0");
        assert_eq!(virtio.vendor_id, Some(0x1af4));
        assert_eq!(virtio.device_id, Some(1));
        assert_eq!(virtio.driver, None);
        assert_eq!(
            virtio.path,
            PathBuf::from("devices/pci0000:00/0000:00:04.0/virtio0")
        );
    }

    #[test]
    fn usb_devices_and_their_interfaces() {
        let listing = list_devices_at(guest().root()).unwrap();
        let stick = find(&listing, "1-1");
        assert_eq!(stick.devtype.as_deref(), Some("usb_device"));
        assert_eq!((stick.vendor_id, stick.device_id), (Some(0x46f4), Some(1)));
        assert_eq!(stick.class, Some(0));
        assert_eq!(stick.modalias, None);
        let interface = find(&listing, "1-1:1.0");
        assert_eq!(interface.devtype.as_deref(), Some("usb_interface"));
        assert_eq!(
            (interface.vendor_id, interface.device_id, interface.class),
            (Some(0x46f4), Some(1), Some(8))
        );
        assert_eq!(
            interface.modalias.as_deref(),
            Some("usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00")
        );
    }

    #[test]
    fn other_buses_have_no_ids_and_take_the_modalias_attribute() {
        let listing = list_devices_at(guest().root()).unwrap();
        let disk = find(&listing, "0:0:0:0");
        assert_eq!(disk.modalias.as_deref(), Some("scsi:t-0x00"));
        assert_eq!(disk.devtype.as_deref(), Some("scsi_device"));
        // The SCSI vendor is a name, not an id.
        assert_eq!(disk.vendor_id, None);
        let serial = find(&listing, "serial8250");
        assert_eq!(serial.modalias.as_deref(), Some("platform:serial8250"));
        assert_eq!(serial.driver.as_deref(), Some("serial8250"));
    }

    #[test]
    fn unreadable_and_malformed_attributes_are_issues() {
        let sysfs = guest();
        let e1000 = sysfs.root().join("devices/pci0000:00/0000:00:03.0");
        fs::write(e1000.join("vendor"), "intel\n").unwrap();
        fs::remove_file(e1000.join("class")).unwrap();
        let virtio = sysfs.root().join("devices/pci0000:00/0000:00:04.0/virtio0");
        fs::remove_file(virtio.join("uevent")).unwrap();
        fs::create_dir(virtio.join("uevent")).unwrap();
        fs::create_dir(virtio.join("modalias")).unwrap();
        let listing = list_devices_at(sysfs.root()).unwrap();
        let messages: Vec<&str> = listing
            .issues
            .iter()
            .map(|issue| issue.message.as_str())
            .collect();
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(messages[0].ends_with(
            "0000:00:03.0/vendor: unexpected value \"intel\", expected a hexadecimal id"
        ));
        assert!(messages[1].contains("0000:00:03.0/class: No such file"));
        assert!(messages[2].contains("virtio0/uevent: Is a directory"));
        assert!(messages[3].contains("virtio0/modalias: Is a directory"));
        let e1000 = find(&listing, "0000:00:03.0");
        assert_eq!((e1000.vendor_id, e1000.class), (None, None));
        assert_eq!(e1000.device_id, Some(0x100e));
        assert_eq!(listing.devices.len(), 7);
    }

    #[test]
    fn a_vanished_device_and_an_unreadable_bus_are_issues() {
        let sysfs = guest();
        symlink(
            "../../../devices/pci0000:00/0000:00:09.0",
            sysfs.root().join("bus/pci/devices/0000:00:09.0"),
        )
        .unwrap();
        fs::create_dir(sysfs.root().join("bus/empty")).unwrap();
        let listing = list_devices_at(sysfs.root()).unwrap();
        assert_eq!(listing.devices.len(), 7);
        assert_eq!(listing.issues.len(), 2, "{:?}", listing.issues);
        assert_eq!(
            listing.issues[0].path,
            sysfs.root().join("bus/empty/devices")
        );
        assert!(listing.issues[1].path.ends_with("0000:00:09.0"));
        assert!(listing.issues[1].message.contains("not found"));
    }

    #[test]
    fn missing_bus_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = list_devices_at(dir.path()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot list {}", dir.path().join("bus").display())
        );
    }

    #[test]
    fn devices_serialize_as_stable_json() {
        let listing = list_devices_at(guest().root()).unwrap();
        let json = serde_json::to_value(find(&listing, "virtio0")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "bus": "virtio",
                "name": "virtio0",
                "path": "devices/pci0000:00/0000:00:04.0/virtio0",
                "devtype": null,
                "modalias": "virtio:d00000001v00001AF4",
                "vendor_id": 0x1af4,
                "device_id": 1,
                "subsystem_vendor_id": null,
                "subsystem_device_id": null,
                "class": null,
                "driver": null
            })
        );
    }

    /// The listing of this machine agrees with its /sys: every PCI device is there with the
    /// modalias and driver sysfs shows.
    #[test]
    fn matches_this_machines_sysfs() {
        let listing = list_devices().unwrap();
        for entry in fs::read_dir("/sys/bus/pci/devices").unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let device = find(&listing, &name);
            let modalias = fs::read_to_string(entry.path().join("modalias")).unwrap();
            assert_eq!(device.modalias.as_deref(), Some(modalias.trim_end()));
            let driver = fs::read_link(entry.path().join("driver")).ok();
            assert_eq!(
                device.driver.as_deref(),
                driver
                    .as_ref()
                    .and_then(|driver| driver.file_name())
                    .and_then(|name| name.to_str())
            );
            assert!(device.vendor_id.is_some() && device.class.is_some());
        }
        let pci_issues: Vec<_> = listing
            .issues
            .iter()
            .filter(|issue| issue.path.starts_with("/sys/bus/pci"))
            .collect();
        assert!(pci_issues.is_empty(), "{pci_issues:?}");
    }
}
