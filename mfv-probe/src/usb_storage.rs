//! USB mass storage that is still settling: a stick present at power-on becomes a disk only
//! some time after its USB device appears, because usb-storage waits `delay_use` seconds
//! (1 by default) before it scans the device's SCSI host, and the disk driver binds after the
//! scan. Config discovery asks [`unsettled_usb_storage_at`] whether to keep looking.

use std::fmt;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::sysfs::link_basename;

/// The USB interface class of mass storage.
const MASS_STORAGE_CLASS: &str = "08";

/// SCSI peripheral device types that a block driver binds: disk (0, sd), WORM (4, sr),
/// CD/DVD (5, sr), optical memory (7, sd), RBC (14, sd), zoned block (20, sd).
const BLOCK_DEVICE_TYPES: [u32; 6] = [0, 4, 5, 7, 14, 20];

/// What a USB mass-storage interface is still waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StorageSettling {
    /// No driver is bound to the interface yet.
    NoDriver,
    /// The driver's SCSI host has not been scanned yet (usb-storage's `delay_use`).
    NotScanned {
        /// The SCSI host, e.g. `host2`.
        host: String,
    },
    /// A SCSI disk or CD drive has no block device yet.
    NoBlockDevice {
        /// The SCSI device, e.g. `2:0:0:0`.
        device: String,
    },
}

/// A USB mass-storage interface whose disks are not all there yet. `Display` is one line:
/// `USB interface 1-1:1.0 (usb-storage): SCSI host host2 not scanned yet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnsettledStorage {
    /// The interface's kernel name, e.g. `1-1:1.0`.
    pub interface: String,
    /// The bound driver, e.g. `usb-storage`.
    pub driver: Option<String>,
    /// What it is waiting for.
    pub state: StorageSettling,
}

impl fmt::Display for UnsettledStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "USB interface {}", self.interface)?;
        if let Some(driver) = &self.driver {
            write!(f, " ({driver})")?;
        }
        match &self.state {
            StorageSettling::NoDriver => f.write_str(": no driver bound yet"),
            StorageSettling::NotScanned { host } => {
                write!(f, ": SCSI host {host} not scanned yet")
            }
            StorageSettling::NoBlockDevice { device } => {
                write!(f, ": SCSI device {device} has no block device yet")
            }
        }
    }
}

/// Every USB mass-storage interface under `<sysfs_root>/bus/usb/devices` whose disks are not
/// all there yet, sorted by interface name; empty when storage has settled or the machine has
/// no USB.
///
/// The sysfs facts, for each USB interface of class `08` (mass storage):
/// - no `driver` link: the interface waits for its driver (usb-storage, uas or a `ums-*`
///   variant) to be loaded and bound;
/// - a SCSI host (`hostN`, created by the driver's probe) without any `targetH:C:T`
///   directory: the scan has not run yet (usb-storage's `delay_use`);
/// - a SCSI device (`H:C:T:L`) whose `type` has a block driver (disk, CD/DVD, optical, RBC,
///   zoned, WORM) without a `block` directory: the block device is not there yet (its driver,
///   sd_mod or sr_mod, is not loaded, or the disk is still being added).
///
/// An interface bound to a driver that made no SCSI host is not storage this function knows
/// how to wait for: it counts as settled. Entries that cannot be read count as settled too:
/// waiting on what cannot be read would only delay the boot (the inventory reports them).
/// A caller bounds its wait: a device that never gets a disk stays unsettled.
pub fn unsettled_usb_storage_at(sysfs_root: impl AsRef<Path>) -> Vec<UnsettledStorage> {
    let devices = sysfs_root.as_ref().join("bus/usb/devices");
    let mut unsettled: Vec<UnsettledStorage> = subdirectories(&devices)
        .into_iter()
        .filter(|name| name.contains(':'))
        .filter_map(|name| interface_state(&devices.join(&name), name))
        .collect();
    unsettled.sort_by(|a, b| a.interface.cmp(&b.interface));
    unsettled
}

/// What the interface at `dir` waits for; `None` when it is not mass storage or has settled.
fn interface_state(dir: &Path, interface: String) -> Option<UnsettledStorage> {
    let class = fs::read_to_string(dir.join("bInterfaceClass")).ok()?;
    if class.trim() != MASS_STORAGE_CLASS {
        return None;
    }
    let unsettled = |driver, state| {
        Some(UnsettledStorage {
            interface: interface.clone(),
            driver,
            state,
        })
    };
    let Some(driver) = link_basename(&dir.join("driver")).ok()? else {
        return unsettled(None, StorageSettling::NoDriver);
    };
    for host in subdirectories(dir)
        .into_iter()
        .filter(|name| numbered(name, "host"))
    {
        let host_dir = dir.join(&host);
        let targets: Vec<String> = subdirectories(&host_dir)
            .into_iter()
            .filter(|name| name.starts_with("target"))
            .collect();
        if targets.is_empty() {
            return unsettled(Some(driver), StorageSettling::NotScanned { host });
        }
        for target in targets {
            let target_dir = host_dir.join(&target);
            for device in subdirectories(&target_dir)
                .into_iter()
                .filter(|name| is_scsi_address(name))
            {
                let device_dir = target_dir.join(&device);
                if has_block_driver(&device_dir)
                    && subdirectories(&device_dir.join("block")).is_empty()
                {
                    return unsettled(Some(driver), StorageSettling::NoBlockDevice { device });
                }
            }
        }
    }
    None
}

/// Whether the SCSI device at `dir` is of a type a block driver binds.
fn has_block_driver(dir: &Path) -> bool {
    fs::read_to_string(dir.join("type"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .is_some_and(|kind| BLOCK_DEVICE_TYPES.contains(&kind))
}

/// `prefix` followed by decimal digits, e.g. `host2`.
fn numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// A SCSI device address `H:C:T:L`.
fn is_scsi_address(name: &str) -> bool {
    let parts: Vec<&str> = name.split(':').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// The names of the directories in `dir` (following links, as `bus/usb/devices` holds links),
/// sorted; empty when it cannot be listed.
fn subdirectories(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::block::tests::write;
    use crate::usb::tests::Fixture;

    /// The QEMU USB stick of [`Fixture::root_hub_and_stick`] as usb-storage leaves it at each
    /// step: `host` adds the SCSI host, `target` the scanned device with `type`, `block` its
    /// disk.
    fn stick(fixture: &Fixture, host: bool, device_type: Option<&str>, block: bool) -> PathBuf {
        fixture.root_hub_and_stick();
        let interface = fixture.entry_dir("usb1/1-1/1-1:1.0");
        if host {
            fs::create_dir_all(interface.join("host0/scsi_host/host0")).unwrap();
        }
        if let Some(device_type) = device_type {
            let device = interface.join("host0/target0:0:0/0:0:0:0");
            write(&device.join("type"), &format!("{device_type}\n"));
            if block {
                fs::create_dir_all(device.join("block/sda/sda1")).unwrap();
            }
        }
        interface
    }

    fn states(fixture: &Fixture) -> Vec<String> {
        unsettled_usb_storage_at(fixture.root())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_stick_settles_step_by_step() {
        let fixture = Fixture::new();
        stick(&fixture, true, None, false);
        assert_eq!(
            states(&fixture),
            ["USB interface 1-1:1.0 (usb-storage): SCSI host host0 not scanned yet"]
        );

        let fixture = Fixture::new();
        stick(&fixture, true, Some("0"), false);
        assert_eq!(
            unsettled_usb_storage_at(fixture.root()),
            [UnsettledStorage {
                interface: "1-1:1.0".into(),
                driver: Some("usb-storage".into()),
                state: StorageSettling::NoBlockDevice {
                    device: "0:0:0:0".into()
                },
            }]
        );
        assert_eq!(
            states(&fixture),
            ["USB interface 1-1:1.0 (usb-storage): SCSI device 0:0:0:0 has no block device yet"]
        );

        let fixture = Fixture::new();
        stick(&fixture, true, Some("0"), true);
        assert!(states(&fixture).is_empty());
    }

    #[test]
    fn an_interface_without_a_driver_is_waited_for() {
        let fixture = Fixture::new();
        fixture.root_hub_and_stick();
        fs::remove_file(fixture.entry_dir("usb1/1-1/1-1:1.0").join("driver")).unwrap();
        assert_eq!(
            states(&fixture),
            ["USB interface 1-1:1.0: no driver bound yet"]
        );
    }

    #[test]
    fn devices_without_a_block_driver_and_other_classes_are_settled() {
        // An enclosure (13) never gets a block device; a CD drive (5) does.
        let fixture = Fixture::new();
        stick(&fixture, true, Some("13"), false);
        assert!(states(&fixture).is_empty());
        let fixture = Fixture::new();
        stick(&fixture, true, Some("5"), false);
        assert_eq!(states(&fixture).len(), 1);
        // A bound interface without a SCSI host is not storage to wait for.
        let fixture = Fixture::new();
        stick(&fixture, false, None, false);
        assert!(states(&fixture).is_empty());
        // The hub's interface (class 09) never counts, bound or not.
        let fixture = Fixture::new();
        fixture.root_hub_and_stick();
        fs::remove_file(fixture.entry_dir("usb1/1-0:1.0").join("driver")).unwrap();
        let interface = fixture.entry_dir("usb1/1-1/1-1:1.0");
        fs::create_dir_all(interface.join("host0/target0:0:0/0:0:0:0/block/sda")).unwrap();
        write(&interface.join("host0/target0:0:0/0:0:0:0/type"), "0\n");
        assert!(states(&fixture).is_empty());
    }

    #[test]
    fn no_usb_or_unreadable_entries_are_settled() {
        let dir = tempfile::tempdir().unwrap();
        assert!(unsettled_usb_storage_at(dir.path()).is_empty());
        let fixture = Fixture::new();
        let interface = stick(&fixture, true, Some("0"), false);
        fs::remove_file(interface.join("host0/target0:0:0/0:0:0:0/type")).unwrap();
        fs::create_dir(interface.join("host0/target0:0:0/0:0:0:0/type")).unwrap();
        assert!(states(&fixture).is_empty());
        fs::remove_file(interface.join("bInterfaceClass")).unwrap();
        fs::remove_dir(interface.join("host0/target0:0:0/0:0:0:0/type")).unwrap();
        write(&interface.join("host0/target0:0:0/0:0:0:0/type"), "0\n");
        assert!(states(&fixture).is_empty());
    }

    #[test]
    fn names_and_json() {
        assert!(numbered("host12", "host"));
        assert!(!numbered("host", "host"));
        assert!(!numbered("hostx", "host"));
        assert!(is_scsi_address("2:0:0:0"));
        assert!(!is_scsi_address("2:0:0"));
        assert!(!is_scsi_address("target2:0:0"));
        assert_eq!(
            serde_json::to_value(UnsettledStorage {
                interface: "1-1:1.0".into(),
                driver: Some("uas".into()),
                state: StorageSettling::NotScanned {
                    host: "host3".into()
                },
            })
            .unwrap(),
            serde_json::json!({
                "interface": "1-1:1.0",
                "driver": "uas",
                "state": {"kind": "not_scanned", "host": "host3"},
            })
        );
    }
}
