//! The setup screen's host ([`SetupHost`]) on the running appliance: the cards from netlink
//! and sysfs, the devices without a driver from sysfs, the state PID 1 publishes, the setup
//! lock, driver modules from the volumes, and the network applied through the host daemon.
//!
//! The console runs as root, but the network stays PID 1's: the choice goes to the host
//! daemon as any network change does (`mfv net apply`), applied and confirmed at once over a
//! second connection, since the operator confirmed it on the screen already. The one change
//! the console makes itself is to set the cards up (without addresses), so that their link
//! shows before anything is configured.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mfv_api::NetworkOutcome;
use mfv_config::mount::{Journal, Mounter, SysMounter};
use mfv_linux::error_chain;
use mfv_net::Netlink;
use mfv_probe::modules::{KernelModuleLoader, load_module_file};

use super::setup::{DriverFile, LinkState, SetupActionError, SetupHost, SetupNic, SetupView};
use super::{CONFIG_REPORT_FILE, read_web_access};
use crate::config::{VOLUME_LOCK_WAIT, VolumeLock};
use crate::network::change::read_view;
use crate::network::nic_candidates;
use crate::setup::{SetupError, SetupLock, read_setup_state};

/// The client name the console gives the host daemon.
const CLIENT: &str = "console-setup";
/// The directory below the runtime directory where volumes are mounted to look for drivers.
const DRIVER_MOUNTS: &str = "drivers";
/// File systems a USB stick or the config volume may carry a driver on.
const DRIVER_VOLUME_TYPES: [&str; 6] = ["vfat", "exfat", "ext2", "ext3", "ext4", "iso9660"];
/// The directories of a volume searched for driver modules: the top and `modules/`.
const DRIVER_DIRS: [&str; 2] = ["", "modules"];
/// How long a network change may wait for its confirmation: the confirmation follows at once.
const CONFIRM_WITHIN_SECS: u32 = 60;

/// Why the setup's host could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupHostError {
    /// The runtime for netlink could not be started.
    #[error("cannot start the runtime for netlink")]
    Runtime(#[source] std::io::Error),
    /// netlink could not be reached.
    #[error("cannot reach the kernel's netlink")]
    Netlink(#[source] mfv_net::NetError),
}

/// The setup screen's host on the appliance; see the module.
#[derive(Debug)]
pub struct SystemSetupHost {
    run_dir: PathBuf,
    sysfs_root: PathBuf,
    socket: PathBuf,
    console: String,
    runtime: tokio::runtime::Runtime,
    netlink: Netlink,
    lock: Option<SetupLock>,
    mounted: Vec<PathBuf>,
    /// Held while volumes are mounted to look for drivers: the config volume may be among
    /// them, and its openers take turns.
    volume_lock: Option<VolumeLock>,
}

impl SystemSetupHost {
    /// The host of the setup on `console` (`ttyS0`): PID 1's files in `run_dir`, sysfs at
    /// `sysfs_root`, the host daemon at `socket`.
    pub fn new(
        run_dir: &Path,
        sysfs_root: &Path,
        socket: &Path,
        console: &str,
    ) -> Result<SystemSetupHost, SetupHostError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SetupHostError::Runtime)?;
        let netlink = runtime
            .block_on(async { Netlink::connect() })
            .map_err(SetupHostError::Netlink)?;
        Ok(SystemSetupHost {
            run_dir: run_dir.to_owned(),
            sysfs_root: sysfs_root.to_owned(),
            socket: socket.to_owned(),
            console: console.to_owned(),
            runtime,
            netlink,
            lock: None,
            mounted: Vec::new(),
            volume_lock: None,
        })
    }

    /// Sets every card that is down up, without addresses, so that its link shows; returns
    /// a line for each card that could not be set up.
    pub fn raise_cards(&mut self) -> Vec<String> {
        let netlink = &self.netlink;
        self.runtime.block_on(async {
            let links = match netlink.links().await {
                Ok(links) => links,
                Err(error) => {
                    return vec![format!("cannot list the links: {}", error_chain(&error))];
                }
            };
            let mut problems = Vec::new();
            for link in nic_candidates(&links)
                .into_iter()
                .filter(|link| !link.admin_up)
            {
                if let Err(error) = netlink.set_up(&link.name).await {
                    problems.push(format!(
                        "cannot set {} up: {}",
                        link.name,
                        error_chain(&error)
                    ));
                }
            }
            problems
        })
    }

    /// The cards in kernel order with their drivers, links and addresses.
    fn cards(&self) -> Vec<SetupNic> {
        let Ok(view) = self.runtime.block_on(read_view(&self.netlink)) else {
            return Vec::new();
        };
        let links: Vec<mfv_net::Link> = view
            .interfaces
            .iter()
            .map(|interface| interface.link.clone())
            .collect();
        let drivers = mfv_probe::list_nics_at(&self.sysfs_root).unwrap_or_default();
        nic_candidates(&links)
            .into_iter()
            .map(|link| {
                let addresses = view
                    .interfaces
                    .iter()
                    .find(|interface| interface.link.name == link.name)
                    .map(|interface| {
                        interface
                            .addresses
                            .iter()
                            .filter(|address| address.address().is_ipv4())
                            .map(ToString::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                SetupNic {
                    name: link.name.clone(),
                    mac: link.mac.clone(),
                    driver: drivers
                        .iter()
                        .find(|nic| nic.name == link.name)
                        .and_then(|nic| nic.driver.clone()),
                    link: match (link.admin_up, link.carrier) {
                        (false, _) => LinkState::Down,
                        (true, true) => LinkState::Up,
                        (true, false) => LinkState::NoCarrier,
                    },
                    addresses,
                }
            })
            .collect()
    }

    /// The PCI and USB devices (bridges aside) that have a modalias and no driver.
    fn driverless(&self) -> Vec<String> {
        let Ok(listing) = mfv_probe::list_devices_at(&self.sysfs_root) else {
            return Vec::new();
        };
        listing
            .devices
            .iter()
            .filter(|device| device.driver.is_none() && device.modalias.is_some())
            .filter(|device| match device.bus.as_str() {
                // PCI class 06 is a bridge: the chipset, which needs no driver of its own.
                "pci" => device.class.is_none_or(|class| class >> 16 != 0x06),
                "usb" => device.devtype.as_deref() == Some("usb_interface"),
                _ => false,
            })
            .map(|device| {
                let ids = match (device.vendor_id, device.device_id) {
                    (Some(vendor), Some(product)) => format!(" {vendor:04x}:{product:04x}"),
                    _ => String::new(),
                };
                let kind = device
                    .class
                    .and_then(|class| device_kind(&device.bus, class))
                    .map(|kind| format!(" ({kind})"))
                    .unwrap_or_default();
                format!("{} {}{ids}{kind}", device.bus, device.name)
            })
            .collect()
    }

    /// Unmounts the volumes mounted to look for drivers.
    fn unmount_driver_volumes(&mut self) {
        for target in self.mounted.drain(..) {
            // A volume that cannot be unmounted stays mounted read-only until the shutdown.
            let _ = SysMounter.unmount(&target);
            let _ = std::fs::remove_dir(&target);
        }
        self.volume_lock = None;
    }
}

/// What a device is, by its class, for the few classes an operator looks for.
fn device_kind(bus: &str, class: u32) -> Option<&'static str> {
    match (bus, class >> 16) {
        ("pci", 0x01) => Some("storage controller"),
        ("pci", 0x02) => Some("network controller"),
        ("pci", 0x03) => Some("display controller"),
        ("pci", 0x0c) => Some("serial bus controller"),
        ("usb", _) => match class {
            0x02 | 0x0a => Some("network or modem"),
            0x08 => Some("storage"),
            0xe0 => Some("wireless"),
            0xff => Some("vendor specific"),
            _ => None,
        },
        _ => None,
    }
}

/// The driver module files at the top and in `modules/` of the volume mounted at `root`.
fn module_files(root: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for dir in DRIVER_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<(String, PathBuf)> = entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
            .filter(|entry| mfv_probe::modules::ModuleName::from_path(&entry.path()).is_some())
            .map(|entry| {
                let name = Path::new(dir).join(entry.file_name());
                (name.to_string_lossy().into_owned(), entry.path())
            })
            .collect();
        files.sort();
        found.extend(files);
    }
    found
}

impl SetupHost for SystemSetupHost {
    fn view(&mut self) -> SetupView {
        let uptime = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
            .map(Duration::from)
            .unwrap_or_default();
        let nics = self.cards();
        let addresses: Vec<IpAddr> = nics
            .iter()
            .flat_map(|nic| &nic.addresses)
            .filter_map(|address| address.split('/').next()?.parse().ok())
            .collect();
        SetupView {
            reason: std::fs::read_to_string(self.run_dir.join(CONFIG_REPORT_FILE)).ok(),
            driverless: self.driverless(),
            state: read_setup_state(&self.run_dir).map_err(|error| error_chain(&error)),
            uptime,
            web: read_web_access(&self.run_dir, &addresses),
            nics,
        }
    }

    fn take_lock(&mut self) -> Result<(), SetupError> {
        self.lock = Some(SetupLock::take(&self.run_dir, &self.console)?);
        Ok(())
    }

    fn release_lock(&mut self) {
        self.unmount_driver_volumes();
        self.lock = None;
    }

    fn driver_files(&mut self) -> Result<Vec<DriverFile>, SetupActionError> {
        self.unmount_driver_volumes();
        let search =
            |error: &dyn std::error::Error| SetupActionError::DriverSearch(error_chain(error));
        let base = self.run_dir.join(DRIVER_MOUNTS);
        std::fs::create_dir_all(&base).map_err(|error| search(&error))?;
        self.volume_lock = Some(
            VolumeLock::take(&self.run_dir, VOLUME_LOCK_WAIT).map_err(|error| search(&error))?,
        );
        let roots = mfv_probe::SystemRoots {
            sysfs: self.sysfs_root.clone(),
            proc: PathBuf::from("/proc"),
            dev: PathBuf::from("/dev"),
        };
        let inventory = mfv_probe::inventory_at(&roots);
        let mut volumes = Vec::new();
        for disk in &inventory.block_devices {
            volumes.push((disk.name.clone(), disk.fs_type.clone(), disk.label.clone()));
            for partition in &disk.partitions {
                volumes.push((
                    partition.name.clone(),
                    partition.fs_type.clone(),
                    partition.label.clone(),
                ));
            }
        }
        let mut files = Vec::new();
        for (name, fs_type, label) in volumes {
            let Some(fs_type) = fs_type.filter(|kind| DRIVER_VOLUME_TYPES.contains(&kind.as_str()))
            else {
                continue;
            };
            let device = roots.dev.join(&name);
            let target = base.join(&name);
            if std::fs::create_dir_all(&target).is_err() {
                continue;
            }
            if SysMounter
                .mount_read_only(&device, &fs_type, Journal::Skip, &target)
                .is_err()
            {
                let _ = std::fs::remove_dir(&target);
                continue;
            }
            self.mounted.push(target.clone());
            let volume = match &label {
                Some(label) => format!("{} ({fs_type}, LABEL={label})", device.display()),
                None => format!("{} ({fs_type})", device.display()),
            };
            for (shown, path) in module_files(&target) {
                files.push(DriverFile {
                    shown_as: format!("{shown} on {volume}"),
                    path,
                });
            }
        }
        Ok(files)
    }

    fn load_driver(&mut self, file: &DriverFile) -> Result<String, SetupActionError> {
        let mut loader = KernelModuleLoader::new(&self.sysfs_root);
        match load_module_file(&mut loader, &file.path) {
            Ok((module, true)) => Ok(format!("{module} loaded: its cards show on the screen")),
            Ok((module, false)) => Ok(format!("{module} was loaded already")),
            Err(error) => Err(SetupActionError::DriverLoad(error_chain(&error))),
        }
    }

    fn apply_network(&mut self, network_toml: &str) -> Result<Vec<String>, SetupActionError> {
        let mut changes = Vec::new();
        let outcome = mfv_api::apply_network(
            &self.socket,
            CLIENT,
            network_toml,
            CONFIRM_WITHIN_SECS,
            |change| {
                changes = change.changes.clone();
                true
            },
        )
        .map_err(|error| SetupActionError::Apply(error_chain(&error)))?;
        match outcome {
            NetworkOutcome::Confirmed => Ok(changes),
            NetworkOutcome::RolledBack { reason } => Err(SetupActionError::Apply(reason)),
            other => Err(SetupActionError::Apply(format!(
                "the host answered {other:?}"
            ))),
        }
    }
}

impl Drop for SystemSetupHost {
    fn drop(&mut self) {
        self.unmount_driver_volumes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_files_are_found_at_the_top_and_in_modules_only() {
        let volume = tempfile::tempdir().unwrap();
        for file in [
            "igb.ko",
            "README.txt",
            "modules/r8169.ko.xz",
            "other/e1000e.ko",
        ] {
            let path = volume.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        std::fs::create_dir(volume.path().join("dir.ko")).unwrap();
        let found: Vec<String> = module_files(volume.path())
            .into_iter()
            .map(|(shown, path)| {
                assert!(path.starts_with(volume.path()));
                shown
            })
            .collect();
        assert_eq!(found, ["igb.ko", "modules/r8169.ko.xz"]);
    }

    #[test]
    fn devices_are_named_by_their_class_where_an_operator_looks_for_one() {
        assert_eq!(device_kind("pci", 0x020000), Some("network controller"));
        assert_eq!(device_kind("pci", 0x010601), Some("storage controller"));
        assert_eq!(device_kind("usb", 0x08), Some("storage"));
        assert_eq!(device_kind("pci", 0x118000), None);
        assert_eq!(device_kind("acpi", 0x02), None);
    }
}
