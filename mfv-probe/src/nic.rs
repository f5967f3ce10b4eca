//! Network interfaces as sysfs shows them under `class/net`.

use std::fs;
use std::path::{Path, PathBuf};

use mfv_linux::OperState;
use serde::Serialize;

use crate::sysfs::{link_basename, read_attribute, resolve_under};
use crate::{ProbeError, ProbeIssue};

/// Where sysfs is mounted on an ordinary Linux system.
pub const DEFAULT_SYSFS_ROOT: &str = "/sys";

/// One network interface: what the kernel reports about it in sysfs.
///
/// Fields the probe could not read are `None` (or `false`) and the reason is in `issues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nic {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Hardware address as the kernel prints it (lowercase, colon separated); `None` when
    /// the interface has none (e.g. a tun device) or it could not be read.
    pub mac: Option<String>,
    /// The bound driver, e.g. `e1000` or `virtio_net`; `None` for virtual interfaces.
    pub driver: Option<String>,
    /// The bus of the underlying device, e.g. `pci`, `virtio` or `usb`.
    pub bus: Option<String>,
    /// The underlying device relative to the sysfs root, e.g.
    /// `devices/pci0000:00/0000:00:03.0/virtio2`; `None` for virtual interfaces.
    pub device_path: Option<PathBuf>,
    /// The operational state (RFC 2863) from `operstate`.
    pub operstate: Option<OperState>,
    /// Whether the link has carrier. An interface that is down has none (the kernel
    /// answers `EINVAL` then).
    pub carrier: bool,
    /// Link speed in Mbit/s; `None` when down or unknown (virtual and many virtio NICs).
    pub speed_mbps: Option<u32>,
    /// True for software interfaces (loopback, bridges, veth, tun...): no `device` link, or
    /// the interface lives under `devices/virtual`.
    pub is_virtual: bool,
    /// What could not be read for this interface; the other fields are still filled in.
    pub issues: Vec<ProbeIssue>,
}

/// Lists the network interfaces of this machine from [`DEFAULT_SYSFS_ROOT`].
pub fn list_nics() -> Result<Vec<Nic>, ProbeError> {
    list_nics_at(DEFAULT_SYSFS_ROOT)
}

/// Lists the network interfaces under `<sysfs_root>/class/net`, sorted by name.
///
/// Fails only when that directory cannot be listed; an unreadable interface or attribute is
/// recorded in that interface's [`Nic::issues`] and the listing goes on.
pub fn list_nics_at(sysfs_root: impl AsRef<Path>) -> Result<Vec<Nic>, ProbeError> {
    let root = sysfs_root.as_ref();
    let class_dir = root.join("class/net");
    let read_dir_error = |source| ProbeError::ReadDir {
        path: class_dir.clone(),
        source,
    };
    let mut names = fs::read_dir(&class_dir)
        .map_err(read_dir_error)?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_dir_error)?;
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| read_nic(root, &class_dir, name))
        .collect())
}

/// Reads one interface; every attribute that fails becomes an issue.
fn read_nic(root: &Path, class_dir: &Path, name: String) -> Nic {
    let dir = class_dir.join(&name);
    let mut issues = Vec::new();
    let mut note = |error: ProbeError| issues.push(ProbeIssue::from_error(&error));

    let mac = read_attribute(&dir.join("address"))
        .unwrap_or_else(|error| {
            note(error);
            None
        })
        .filter(|mac| !mac.is_empty())
        .map(|mac| mac.to_ascii_lowercase());

    let operstate_path = dir.join("operstate");
    let operstate = match read_attribute(&operstate_path) {
        Ok(Some(text)) => OperState::from_sysfs(&text).or_else(|| {
            note(ProbeError::Malformed {
                path: operstate_path.clone(),
                value: text,
                expected: "an RFC 2863 state such as up or down",
            });
            None
        }),
        Ok(None) => None,
        Err(error) => {
            note(error);
            None
        }
    };

    let carrier_path = dir.join("carrier");
    let carrier = match read_attribute(&carrier_path) {
        Ok(Some(text)) if text == "1" => true,
        Ok(Some(text)) if text == "0" => false,
        Ok(Some(text)) => {
            note(ProbeError::Malformed {
                path: carrier_path,
                value: text,
                expected: "0 or 1",
            });
            false
        }
        Ok(None) => false,
        Err(error) => {
            note(error);
            false
        }
    };

    let speed_path = dir.join("speed");
    let speed_mbps = match read_attribute(&speed_path) {
        Ok(Some(text)) => parse_speed(&text).unwrap_or_else(|| {
            note(ProbeError::Malformed {
                path: speed_path,
                value: text,
                expected: "a speed in Mbit/s or -1",
            });
            None
        }),
        Ok(None) => None,
        Err(error) => {
            note(error);
            None
        }
    };

    let device_link = dir.join("device");
    let device_path = resolve_under(root, &device_link).unwrap_or_else(|error| {
        note(error);
        None
    });
    let driver = link_basename(&device_link.join("driver")).unwrap_or_else(|error| {
        note(error);
        None
    });
    let bus = link_basename(&device_link.join("subsystem")).unwrap_or_else(|error| {
        note(error);
        None
    });
    let interface_path = resolve_under(root, &dir).unwrap_or_else(|error| {
        note(error);
        None
    });
    let under_virtual = interface_path.is_some_and(|path| path.starts_with("devices/virtual"));
    let is_virtual = device_path.is_none() || under_virtual;

    Nic {
        name,
        mac,
        driver,
        bus,
        device_path,
        operstate,
        carrier,
        speed_mbps,
        is_virtual,
        issues,
    }
}

/// `Some(None)` for the kernel's "unknown" (-1, or any negative value), `None` when the
/// text is not a number that fits.
fn parse_speed(text: &str) -> Option<Option<u32>> {
    let value: i64 = text.parse().ok()?;
    if value < 0 {
        Some(None)
    } else {
        u32::try_from(value).ok().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A fixture sysfs tree laid out like the kernel's: the interface directory lives under
    /// `devices/...`, `class/net/<name>` and `device` are relative symlinks.
    struct FixtureSysfs {
        dir: tempfile::TempDir,
    }

    struct FixtureNic<'a> {
        name: &'a str,
        /// Device directory under `devices/`, `None` for a virtual interface.
        device: Option<&'a str>,
        driver: Option<&'a str>,
        bus: &'a str,
        address: &'a str,
        operstate: &'a str,
        carrier: &'a str,
        speed: &'a str,
    }

    impl FixtureSysfs {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("class/net")).unwrap();
            FixtureSysfs { dir }
        }

        fn root(&self) -> &Path {
            self.dir.path()
        }

        /// Adds a NIC; returns its interface directory.
        fn add(&self, nic: FixtureNic<'_>) -> PathBuf {
            let root = self.root();
            let device_rel = nic.device.map_or("virtual/net".to_owned(), str::to_owned);
            let iface_rel = format!("devices/{device_rel}/net/{}", nic.name);
            let iface = root.join(&iface_rel);
            fs::create_dir_all(&iface).unwrap();
            symlink(
                format!("../../{iface_rel}"),
                root.join("class/net").join(nic.name),
            )
            .unwrap();
            for (attribute, value) in [
                ("address", nic.address),
                ("operstate", nic.operstate),
                ("carrier", nic.carrier),
                ("speed", nic.speed),
            ] {
                fs::write(iface.join(attribute), format!("{value}\n")).unwrap();
            }
            if nic.device.is_some() {
                symlink("../..", iface.join("device")).unwrap();
                let device = root.join("devices").join(&device_rel);
                let depth = device_rel.split('/').count() + 1;
                let up = "../".repeat(depth);
                fs::create_dir_all(root.join("bus").join(nic.bus).join("drivers")).unwrap();
                symlink(format!("{up}bus/{}", nic.bus), device.join("subsystem")).unwrap();
                if let Some(driver) = nic.driver {
                    let driver_dir = root.join("bus").join(nic.bus).join("drivers").join(driver);
                    fs::create_dir_all(driver_dir).unwrap();
                    symlink(
                        format!("{up}bus/{}/drivers/{driver}", nic.bus),
                        device.join("driver"),
                    )
                    .unwrap();
                }
            }
            iface
        }
    }

    fn e1000<'a>() -> FixtureNic<'a> {
        FixtureNic {
            name: "eth0",
            device: Some("pci0000:00/0000:00:03.0"),
            driver: Some("e1000"),
            bus: "pci",
            address: "52:54:00:12:34:56",
            operstate: "up",
            carrier: "1",
            speed: "1000",
        }
    }

    fn check_one(nic: FixtureNic<'_>, adjust: impl FnOnce(&Path)) -> Nic {
        let sysfs = FixtureSysfs::new();
        let iface = sysfs.add(nic);
        adjust(&iface);
        let mut nics = list_nics_at(sysfs.root()).unwrap();
        assert_eq!(nics.len(), 1);
        nics.remove(0)
    }

    #[test]
    fn physical_pci_nic() {
        let nic = check_one(e1000(), |_| {});
        assert_eq!(
            nic,
            Nic {
                name: "eth0".into(),
                mac: Some("52:54:00:12:34:56".into()),
                driver: Some("e1000".into()),
                bus: Some("pci".into()),
                device_path: Some("devices/pci0000:00/0000:00:03.0".into()),
                operstate: Some(OperState::Up),
                carrier: true,
                speed_mbps: Some(1000),
                is_virtual: false,
                issues: vec![],
            }
        );
    }

    #[test]
    fn virtio_nic_below_a_pci_device() {
        let nic = check_one(
            FixtureNic {
                name: "ens3",
                device: Some("pci0000:00/0000:00:03.0/virtio2"),
                driver: Some("virtio_net"),
                bus: "virtio",
                speed: "-1",
                ..e1000()
            },
            |_| {},
        );
        assert_eq!(nic.driver.as_deref(), Some("virtio_net"));
        assert_eq!(nic.bus.as_deref(), Some("virtio"));
        assert_eq!(
            nic.device_path,
            Some(PathBuf::from("devices/pci0000:00/0000:00:03.0/virtio2"))
        );
        assert_eq!(nic.speed_mbps, None);
        assert!(!nic.is_virtual);
        assert!(nic.issues.is_empty(), "{:?}", nic.issues);
    }

    #[test]
    fn loopback_is_virtual_without_driver() {
        let nic = check_one(
            FixtureNic {
                name: "lo",
                device: None,
                driver: None,
                address: "00:00:00:00:00:00",
                operstate: "unknown",
                ..e1000()
            },
            |iface| fs::remove_file(iface.join("speed")).unwrap(),
        );
        assert!(nic.is_virtual);
        assert_eq!(nic.driver, None);
        assert_eq!(nic.bus, None);
        assert_eq!(nic.device_path, None);
        assert_eq!(nic.operstate, Some(OperState::Unknown));
        // A missing attribute is reported, the rest is still read.
        assert_eq!(nic.issues.len(), 1);
        assert!(nic.issues[0].path.ends_with("speed"));
        assert!(
            nic.issues[0].message.contains("No such file"),
            "{}",
            nic.issues[0]
        );
    }

    #[test]
    fn unbound_device_has_no_driver() {
        let nic = check_one(
            FixtureNic {
                driver: None,
                ..e1000()
            },
            |_| {},
        );
        assert_eq!(nic.driver, None);
        assert!(!nic.is_virtual);
        assert!(nic.issues.is_empty());
    }

    #[test]
    fn device_link_under_devices_virtual_is_virtual() {
        // Some virtual interfaces carry a device link; living under devices/virtual decides.
        let sysfs = FixtureSysfs::new();
        sysfs.add(FixtureNic {
            name: "veth0",
            device: Some("virtual/net"),
            ..e1000()
        });
        let nics = list_nics_at(sysfs.root()).unwrap();
        assert!(nics[0].is_virtual);
    }

    #[test]
    fn down_interface_without_carrier_or_speed_values() {
        // The kernel's EINVAL answer for a down NIC is covered in `sysfs::tests` and by the
        // comparison with this machine's /sys; here the plain "0" and "-1" values.
        let nic = check_one(
            FixtureNic {
                operstate: "down",
                carrier: "0",
                speed: "-1",
                ..e1000()
            },
            |_| {},
        );
        assert_eq!(nic.operstate, Some(OperState::Down));
        assert!(!nic.carrier);
        assert_eq!(nic.speed_mbps, None);
        assert!(nic.issues.is_empty());
    }

    #[test]
    fn malformed_values_become_issues_and_the_listing_goes_on() {
        let sysfs = FixtureSysfs::new();
        sysfs.add(FixtureNic {
            operstate: "sideways",
            carrier: "maybe",
            speed: "fast",
            ..e1000()
        });
        sysfs.add(FixtureNic {
            name: "eth1",
            device: Some("pci0000:00/0000:00:04.0"),
            speed: "99999999999",
            ..e1000()
        });
        let nics = list_nics_at(sysfs.root()).unwrap();
        assert_eq!(nics.len(), 2);
        let messages: Vec<&str> = nics[0].issues.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].ends_with(
            "operstate: unexpected value \"sideways\", expected an RFC 2863 state such as up or down"
        ));
        assert!(messages[1].ends_with("carrier: unexpected value \"maybe\", expected 0 or 1"));
        assert!(
            messages[2]
                .ends_with("speed: unexpected value \"fast\", expected a speed in Mbit/s or -1")
        );
        assert_eq!(nics[0].operstate, None);
        assert!(!nics[0].carrier);
        assert_eq!(nics[0].mac.as_deref(), Some("52:54:00:12:34:56"));
        assert_eq!(nics[1].speed_mbps, None);
        assert_eq!(nics[1].issues.len(), 1);
    }

    #[test]
    fn unreadable_attribute_is_an_issue() {
        let nic = check_one(e1000(), |iface| {
            fs::remove_file(iface.join("address")).unwrap();
            fs::create_dir(iface.join("address")).unwrap();
        });
        assert_eq!(nic.mac, None);
        assert_eq!(nic.issues.len(), 1);
        assert!(
            nic.issues[0].message.contains("Is a directory"),
            "{}",
            nic.issues[0]
        );
        assert_eq!(nic.speed_mbps, Some(1000));
    }

    #[test]
    fn unreadable_links_are_issues() {
        let nic = check_one(e1000(), |iface| {
            let device = iface.join("device").canonicalize().unwrap();
            fs::remove_file(device.join("driver")).unwrap();
            fs::create_dir(device.join("driver")).unwrap();
            fs::remove_file(device.join("subsystem")).unwrap();
            fs::write(device.join("subsystem"), "").unwrap();
        });
        assert_eq!(nic.driver, None);
        assert_eq!(nic.bus, None);
        assert_eq!(nic.issues.len(), 2, "{:?}", nic.issues);
        assert!(nic.issues[0].path.ends_with("device/driver"));
        assert!(nic.issues[1].path.ends_with("device/subsystem"));
    }

    #[test]
    fn dangling_class_entry_is_reported() {
        let sysfs = FixtureSysfs::new();
        symlink(
            "../../devices/virtual/net/gone",
            sysfs.root().join("class/net/gone"),
        )
        .unwrap();
        let nics = list_nics_at(sysfs.root()).unwrap();
        assert_eq!(nics[0].name, "gone");
        assert!(nics[0].is_virtual);
        assert_eq!(nics[0].issues.len(), 4, "{:?}", nics[0].issues);
    }

    #[test]
    fn looping_device_link_is_an_issue() {
        let nic = check_one(e1000(), |iface| {
            fs::remove_file(iface.join("device")).unwrap();
            symlink("device", iface.join("device")).unwrap();
        });
        assert_eq!(nic.device_path, None);
        assert!(nic.is_virtual);
        assert!(
            nic.issues
                .iter()
                .any(|issue| issue.path.ends_with("device"))
        );
    }

    #[test]
    fn missing_class_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = list_nics_at(dir.path()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot list {}", dir.path().join("class/net").display())
        );
    }

    #[test]
    fn nics_serialize_as_stable_json() {
        let nic = check_one(e1000(), |_| {});
        let json = serde_json::to_value(&nic).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "eth0",
                "mac": "52:54:00:12:34:56",
                "driver": "e1000",
                "bus": "pci",
                "device_path": "devices/pci0000:00/0000:00:03.0",
                "operstate": "up",
                "carrier": true,
                "speed_mbps": 1000,
                "is_virtual": false,
                "issues": []
            })
        );
    }

    /// Names under /sys/class/net of this machine, sorted.
    fn system_nic_names() -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The listing of this machine agrees with what its /sys/class/net says. Interfaces may
    /// come and go while the test runs (other tests create veth pairs), so the listing is
    /// retried until the directory is the same before and after it, and an interface that
    /// vanished before its attributes are compared is skipped.
    #[test]
    fn matches_this_machines_sysfs() {
        let nics = (0..10)
            .find_map(|_| {
                let before = system_nic_names();
                let nics = list_nics().unwrap();
                let names: Vec<String> = nics.iter().map(|nic| nic.name.clone()).collect();
                (before == system_nic_names() && names == before).then_some(nics)
            })
            .expect("the interface list kept changing");
        for nic in &nics {
            let dir = Path::new("/sys/class/net").join(&nic.name);
            let address = fs::read_to_string(dir.join("address"));
            let carrier = fs::read_to_string(dir.join("carrier"));
            let has_device = dir.join("device").exists();
            let driver = fs::read_link(dir.join("device/driver"));
            if !dir.exists() {
                continue;
            }
            assert!(nic.issues.is_empty(), "{}: {:?}", nic.name, nic.issues);
            assert_eq!(
                nic.mac.as_deref().unwrap_or(""),
                address.unwrap().trim_end()
            );
            assert_eq!(nic.device_path.is_some(), has_device, "{}", nic.name);
            if nic.name == "lo" {
                assert!(nic.is_virtual);
            }
            if let Ok(driver) = driver {
                assert_eq!(
                    nic.driver.as_deref(),
                    driver.file_name().and_then(|name| name.to_str())
                );
            }
            assert_eq!(nic.carrier, carrier.is_ok_and(|text| text.trim() == "1"));
        }
    }
}
