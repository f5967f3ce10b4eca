//! USB devices (not their interfaces) as sysfs shows them under `bus/usb/devices`, each with
//! the class and bound driver of its interfaces.

use std::io;
use std::path::Path;

use serde::Serialize;

use crate::block::{IssueLog, list_names, read_optional_attribute};
use crate::sysfs::link_basename;
use crate::{ProbeError, ProbeIssue};

/// One USB device, a root hub included. Serializes with these field names (snake_case).
///
/// Fields the probe could not read are `None` and the reason is in `issues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbDevice {
    /// Kernel name: `usb1` for the root hub of bus 1, `1-2` for port 2 of it, `1-2.4` for
    /// port 4 of the hub on that port.
    pub name: String,
    /// `busnum`.
    pub bus_number: Option<u32>,
    /// `devnum`, the address on the bus.
    pub device_number: Option<u32>,
    /// `idVendor`, four lowercase hex digits, e.g. `46f4`.
    pub vendor_id: Option<String>,
    /// `idProduct`, four lowercase hex digits.
    pub product_id: Option<String>,
    /// `manufacturer` string, when the device has one.
    pub manufacturer: Option<String>,
    /// `product` string, when the device has one.
    pub product: Option<String>,
    /// `serial` string, when the device has one.
    pub serial: Option<String>,
    /// `speed` in Mbit/s as the kernel writes it: `1.5`, `12`, `480`, `5000`, `10000`...
    pub speed_mbps: Option<String>,
    /// `bDeviceClass`, two hex digits (`00`: defined per interface, `09`: hub).
    pub class: Option<String>,
    /// The interfaces of the active configuration, sorted by name.
    pub interfaces: Vec<UsbInterface>,
    /// What could not be read for this device; the other fields are still filled in.
    pub issues: Vec<ProbeIssue>,
}

/// One interface of a [`UsbDevice`]: where drivers bind. Serializes with these field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbInterface {
    /// Kernel name, `<device>:<configuration>.<interface>`, e.g. `1-2:1.0`.
    pub name: String,
    /// `bInterfaceClass`, two hex digits (`08`: mass storage, `03`: HID, `09`: hub).
    pub class: Option<String>,
    /// The bound driver, e.g. `usb-storage`, `usbhid`, `hub`.
    pub driver: Option<String>,
}

impl UsbDevice {
    /// `vendor:product` ids, e.g. `46f4:0001`, or `-` when either is unknown.
    pub fn ids(&self) -> String {
        match (&self.vendor_id, &self.product_id) {
            (Some(vendor), Some(product)) => format!("{vendor}:{product}"),
            _ => "-".to_owned(),
        }
    }
}

/// Lists the USB devices under `<sysfs_root>/bus/usb/devices`, sorted by bus and device
/// number. Entries with a `:` in their name are interfaces and appear in their device's
/// [`UsbDevice::interfaces`].
///
/// A machine without USB has no `bus/usb` directory: that gives an empty list. Fails only when
/// the directory exists but cannot be listed.
pub fn list_usb_devices_at(sysfs_root: impl AsRef<Path>) -> Result<Vec<UsbDevice>, ProbeError> {
    let dir = sysfs_root.as_ref().join("bus/usb/devices");
    let names = match list_names(&dir) {
        Ok(names) => names,
        Err(ProbeError::ReadDir { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(Vec::new());
        }
        Err(error) => return Err(error),
    };
    let mut devices: Vec<UsbDevice> = names
        .into_iter()
        .filter(|name| !name.contains(':'))
        .map(|name| read_usb_device(&dir.join(&name), name))
        .collect();
    devices.sort_by(|a, b| {
        (a.bus_number, a.device_number, &a.name).cmp(&(b.bus_number, b.device_number, &b.name))
    });
    Ok(devices)
}

/// Reads one device and its interfaces (the subdirectories with a `:` in their name).
fn read_usb_device(dir: &Path, name: String) -> UsbDevice {
    let mut log = IssueLog::default();
    let number = |log: &mut IssueLog, attribute: &str| {
        log.parsed(&dir.join(attribute), "a decimal number", |text| {
            text.parse().ok()
        })
    };
    let bus_number = number(&mut log, "busnum");
    let device_number = number(&mut log, "devnum");
    let hex = |log: &mut IssueLog, attribute: &str, digits: usize, expected: &'static str| {
        log.parsed(&dir.join(attribute), expected, |text| {
            (text.len() == digits && text.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| text.to_ascii_lowercase())
        })
    };
    let vendor_id = hex(&mut log, "idVendor", 4, "four hex digits");
    let product_id = hex(&mut log, "idProduct", 4, "four hex digits");
    let class = hex(&mut log, "bDeviceClass", 2, "two hex digits");
    let speed_mbps = log.parsed(&dir.join("speed"), "a speed in Mbit/s", |text| {
        let digits_and_one_dot = text.starts_with(|c: char| c.is_ascii_digit())
            && text.chars().all(|c| c.is_ascii_digit() || c == '.')
            && text.matches('.').count() <= 1;
        digits_and_one_dot.then(|| text.to_owned())
    });
    let manufacturer = log.value_or_note(read_optional_attribute(&dir.join("manufacturer")));
    let product = log.value_or_note(read_optional_attribute(&dir.join("product")));
    let serial = log.value_or_note(read_optional_attribute(&dir.join("serial")));
    let interfaces = match list_names(dir) {
        Ok(names) => names
            .into_iter()
            .filter(|entry| entry.contains(':') && dir.join(entry).is_dir())
            .map(|entry| {
                let interface_dir = dir.join(&entry);
                UsbInterface {
                    class: log.value_or_note(read_optional_attribute(
                        &interface_dir.join("bInterfaceClass"),
                    )),
                    driver: log.value_or_note(link_basename(&interface_dir.join("driver"))),
                    name: entry,
                }
            })
            .collect(),
        Err(error) => {
            log.note(error);
            Vec::new()
        }
    };
    UsbDevice {
        name,
        bus_number,
        device_number,
        vendor_id,
        product_id,
        manufacturer,
        product,
        serial,
        speed_mbps,
        class,
        interfaces,
        issues: log.issues,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    use super::*;
    use crate::block::tests::write;

    /// A fixture sysfs tree laid out like the kernel's: device directories nested under the
    /// host controller, interfaces inside their device, `bus/usb/devices/<name>` symlinks to
    /// both, `driver` links into `bus/usb/drivers`.
    pub(crate) struct Fixture {
        dir: tempfile::TempDir,
    }

    const CONTROLLER: &str = "devices/pci0000:00/0000:00:04.0";

    impl Fixture {
        pub(crate) fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("bus/usb/devices")).unwrap();
            Fixture { dir }
        }

        pub(crate) fn root(&self) -> &Path {
            self.dir.path()
        }

        /// The directory of the entry at `relative` below the controller.
        pub(crate) fn entry_dir(&self, relative: &str) -> PathBuf {
            self.root().join(CONTROLLER).join(relative)
        }

        /// Adds an entry at `relative` (below the controller) with `attributes` and its
        /// `bus/usb/devices` link; `driver` binds it.
        fn entry(
            &self,
            relative: &str,
            attributes: &[(&str, &str)],
            driver: Option<&str>,
        ) -> PathBuf {
            let path = format!("{CONTROLLER}/{relative}");
            let dir = self.root().join(&path);
            fs::create_dir_all(&dir).unwrap();
            for (name, value) in attributes {
                write(&dir.join(name), &format!("{value}\n"));
            }
            let name = relative.rsplit('/').next().unwrap();
            symlink(
                format!("../../../{path}"),
                self.root().join("bus/usb/devices").join(name),
            )
            .unwrap();
            if let Some(driver) = driver {
                fs::create_dir_all(self.root().join("bus/usb/drivers").join(driver)).unwrap();
                let up = "../".repeat(path.matches('/').count() + 1);
                symlink(format!("{up}bus/usb/drivers/{driver}"), dir.join("driver")).unwrap();
            }
            dir
        }

        /// The QEMU xhci root hub on bus 1 and a USB stick on its port 1.
        pub(crate) fn root_hub_and_stick(&self) {
            self.entry(
                "usb1",
                &[
                    ("busnum", "1"),
                    ("devnum", "1"),
                    ("idVendor", "1d6b"),
                    ("idProduct", "0003"),
                    ("manufacturer", "Linux 6.1.0-56-amd64 xhci-hcd"),
                    ("product", "xHCI Host Controller"),
                    ("serial", "0000:00:04.0"),
                    ("speed", "5000"),
                    ("bDeviceClass", "09"),
                ],
                Some("usb"),
            );
            self.entry("usb1/1-0:1.0", &[("bInterfaceClass", "09")], Some("hub"));
            self.entry(
                "usb1/1-1",
                &[
                    ("busnum", "1"),
                    ("devnum", "2"),
                    ("idVendor", "46F4"),
                    ("idProduct", "0001"),
                    ("manufacturer", "QEMU"),
                    ("product", "QEMU USB HARDDRIVE"),
                    ("serial", "1-0000:00:04.0-1"),
                    ("speed", "480"),
                    ("bDeviceClass", "00"),
                ],
                Some("usb"),
            );
            self.entry(
                "usb1/1-1/1-1:1.0",
                &[("bInterfaceClass", "08")],
                Some("usb-storage"),
            );
        }
    }

    #[test]
    fn root_hub_and_mass_storage_device() {
        let fixture = Fixture::new();
        fixture.root_hub_and_stick();
        let devices = list_usb_devices_at(fixture.root()).unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(
            devices[1],
            UsbDevice {
                name: "1-1".into(),
                bus_number: Some(1),
                device_number: Some(2),
                vendor_id: Some("46f4".into()),
                product_id: Some("0001".into()),
                manufacturer: Some("QEMU".into()),
                product: Some("QEMU USB HARDDRIVE".into()),
                serial: Some("1-0000:00:04.0-1".into()),
                speed_mbps: Some("480".into()),
                class: Some("00".into()),
                interfaces: vec![UsbInterface {
                    name: "1-1:1.0".into(),
                    class: Some("08".into()),
                    driver: Some("usb-storage".into()),
                }],
                issues: vec![],
            }
        );
        assert_eq!(devices[0].name, "usb1");
        assert_eq!(devices[0].ids(), "1d6b:0003");
        assert_eq!(
            devices[0].interfaces,
            [UsbInterface {
                name: "1-0:1.0".into(),
                class: Some("09".into()),
                driver: Some("hub".into()),
            }]
        );
        assert!(devices[0].issues.is_empty(), "{:?}", devices[0].issues);
    }

    #[test]
    fn sorted_by_bus_and_address() {
        let fixture = Fixture::new();
        let numbers = |bus: &'static str, dev: &'static str| {
            [
                ("busnum", bus),
                ("devnum", dev),
                ("idVendor", "0000"),
                ("idProduct", "0000"),
                ("speed", "12"),
                ("bDeviceClass", "00"),
            ]
        };
        fixture.entry("usb2", &numbers("2", "1"), None);
        fixture.entry("usb1", &numbers("1", "1"), None);
        fixture.entry("usb1/1-10", &numbers("1", "3"), None);
        fixture.entry("usb1/1-2", &numbers("1", "12"), None);
        let names: Vec<String> = list_usb_devices_at(fixture.root())
            .unwrap()
            .into_iter()
            .map(|device| device.name)
            .collect();
        assert_eq!(names, ["usb1", "1-10", "1-2", "usb2"]);
    }

    #[test]
    fn optional_strings_may_be_missing_required_ones_are_issues() {
        let fixture = Fixture::new();
        fixture.entry(
            "usb1/1-3",
            &[
                ("busnum", "one"),
                ("devnum", "4"),
                ("idVendor", "12345"),
                ("idProduct", "zz01"),
                ("speed", "fast"),
                ("bDeviceClass", "ff"),
            ],
            None,
        );
        fixture.entry("usb1/1-3/1-3:1.0", &[], None);
        let devices = list_usb_devices_at(fixture.root()).unwrap();
        let device = &devices[0];
        assert_eq!(device.bus_number, None);
        assert_eq!(device.device_number, Some(4));
        assert_eq!(device.vendor_id, None);
        assert_eq!(device.product_id, None);
        assert_eq!(device.speed_mbps, None);
        assert_eq!(device.class.as_deref(), Some("ff"));
        assert_eq!(
            (device.manufacturer.as_ref(), device.product.as_ref()),
            (None, None)
        );
        assert_eq!(device.ids(), "-");
        assert_eq!(
            device.interfaces,
            [UsbInterface {
                name: "1-3:1.0".into(),
                class: None,
                driver: None
            }]
        );
        let expected: Vec<String> = device
            .issues
            .iter()
            .map(|issue| {
                let name = issue
                    .path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let value = issue
                    .message
                    .rsplit(", expected ")
                    .next()
                    .unwrap()
                    .to_owned();
                format!("{name}: {value}")
            })
            .collect();
        assert_eq!(
            expected,
            [
                "busnum: a decimal number",
                "idVendor: four hex digits",
                "idProduct: four hex digits",
                "speed: a speed in Mbit/s",
            ]
        );
    }

    #[test]
    fn speeds_as_the_kernel_writes_them() {
        let fixture = Fixture::new();
        for (number, speed) in ["1.5", "10000", "1.2.3", ".5", "-1"]
            .into_iter()
            .enumerate()
        {
            let devnum = (number + 2).to_string();
            fixture.entry(
                &format!("usb1/1-{devnum}"),
                &[
                    ("busnum", "1"),
                    ("devnum", &devnum),
                    ("idVendor", "0000"),
                    ("idProduct", "0000"),
                    ("speed", speed),
                    ("bDeviceClass", "00"),
                ],
                None,
            );
        }
        let speeds: Vec<(Option<String>, usize)> = list_usb_devices_at(fixture.root())
            .unwrap()
            .into_iter()
            .map(|device| (device.speed_mbps, device.issues.len()))
            .collect();
        assert_eq!(
            speeds,
            [
                (Some("1.5".into()), 0),
                (Some("10000".into()), 0),
                (None, 1),
                (None, 1),
                (None, 1),
            ]
        );
    }

    #[test]
    fn unreadable_attribute_and_driver_link_are_issues() {
        let fixture = Fixture::new();
        fixture.root_hub_and_stick();
        let stick = fixture.root().join(CONTROLLER).join("usb1/1-1");
        fs::remove_file(stick.join("product")).unwrap();
        fs::create_dir(stick.join("product")).unwrap();
        let interface = stick.join("1-1:1.0");
        fs::remove_file(interface.join("driver")).unwrap();
        fs::create_dir(interface.join("driver")).unwrap();
        let devices = list_usb_devices_at(fixture.root()).unwrap();
        let device = &devices[1];
        assert_eq!(device.product, None);
        assert_eq!(device.interfaces[0].driver, None);
        assert_eq!(device.interfaces[0].class.as_deref(), Some("08"));
        let paths: Vec<&Path> = device
            .issues
            .iter()
            .map(|issue| issue.path.as_path())
            .collect();
        assert_eq!(
            paths,
            [
                fixture.root().join("bus/usb/devices/1-1/product"),
                fixture.root().join("bus/usb/devices/1-1/1-1:1.0/driver"),
            ]
        );
    }

    #[test]
    fn no_usb_bus_is_an_empty_list_an_unlistable_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(list_usb_devices_at(dir.path()).unwrap(), []);
        write(&dir.path().join("bus/usb/devices"), "");
        let error = list_usb_devices_at(dir.path()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot list {}",
                dir.path().join("bus/usb/devices").display()
            )
        );
    }

    #[test]
    fn usb_devices_serialize_as_stable_json() {
        let fixture = Fixture::new();
        fixture.root_hub_and_stick();
        let devices = list_usb_devices_at(fixture.root()).unwrap();
        assert_eq!(
            serde_json::to_value(&devices[1]).unwrap(),
            serde_json::json!({
                "name": "1-1",
                "bus_number": 1,
                "device_number": 2,
                "vendor_id": "46f4",
                "product_id": "0001",
                "manufacturer": "QEMU",
                "product": "QEMU USB HARDDRIVE",
                "serial": "1-0000:00:04.0-1",
                "speed_mbps": "480",
                "class": "00",
                "interfaces": [{"name": "1-1:1.0", "class": "08", "driver": "usb-storage"}],
                "issues": []
            })
        );
    }
}
