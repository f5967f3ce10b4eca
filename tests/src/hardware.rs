//! The machine the driver tests and the coldplug benchmark boot: one NIC of each emulated
//! model and a disk on each interface, some holding labelled file systems, so that coldplug
//! has real work on the PCI, virtio, SCSI/ATA and USB buses.

use crate::filesystem::Filesystem;
use crate::spec::{DiskInterface, DiskSpec, GuestSpec, NicModel};

const MIB: u64 = 1 << 20;

/// One disk of [`with_probe_hardware`]: how it is attached and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeDisk {
    /// How the disk is attached.
    pub interface: DiskInterface,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// The file system and its label, or `None` for a blank disk.
    pub filesystem: Option<(Filesystem, &'static str)>,
}

/// The NICs of [`with_probe_hardware`], in the order they are added (MAC addresses
/// 52:54:00:12:34:56, :57, :58).
pub const PROBE_NICS: [NicModel; 3] = [NicModel::E1000, NicModel::VirtioNet, NicModel::Rtl8139];

/// The disks of [`with_probe_hardware`], in the order they are added.
pub const PROBE_DISKS: [ProbeDisk; 4] = [
    ProbeDisk {
        interface: DiskInterface::Virtio,
        size_bytes: 32 * MIB,
        filesystem: Some((Filesystem::Ext4, "virtio-data")),
    },
    ProbeDisk {
        interface: DiskInterface::Sata,
        size_bytes: 32 * MIB,
        filesystem: Some((Filesystem::Ext4, "sata-data")),
    },
    ProbeDisk {
        interface: DiskInterface::Sata,
        size_bytes: 16 * MIB,
        filesystem: None,
    },
    ProbeDisk {
        interface: DiskInterface::Usb,
        size_bytes: 16 * MIB,
        filesystem: Some((Filesystem::Vfat, "MFVSTICK")),
    },
];

/// `spec` with [`PROBE_NICS`] and [`PROBE_DISKS`] (the USB disk brings the xHCI controller
/// that hot-plugged USB disks also use).
pub fn with_probe_hardware(spec: GuestSpec) -> GuestSpec {
    let spec = PROBE_NICS.iter().fold(spec, |spec, model| spec.nic(*model));
    PROBE_DISKS.iter().fold(spec, |spec, disk| {
        spec.disk(match disk.filesystem {
            Some((filesystem, label)) => {
                DiskSpec::formatted(disk.interface, disk.size_bytes, filesystem, label)
            }
            None => DiskSpec::blank(disk.interface, disk.size_bytes),
        })
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::image::ApplianceImage;

    #[test]
    fn the_probe_machine_has_every_nic_model_and_disk_interface() {
        let image = ApplianceImage {
            kernel: "/img/vmlinuz".into(),
            initrd: "/img/initrd.img".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let spec = with_probe_hardware(GuestSpec::new(&image));
        let resolved = spec.resolve(Some(dir.path())).unwrap();
        let paths: Vec<PathBuf> = (0..4)
            .map(|index| dir.path().join(format!("disk{index}.img")))
            .collect();
        assert_eq!(resolved.disk_paths, paths);
        let args = spec
            .qemu_args(
                crate::spec::Console::Captured {
                    dir: Path::new("/t"),
                },
                &resolved,
            )
            .unwrap()
            .join(" ");
        for device in [
            "-device e1000,",
            "-device virtio-net-pci,",
            "-device rtl8139,",
            "-device virtio-blk-pci,drive=d0",
            "-device ide-hd,drive=d1,bus=ahci0.0",
            "-device ide-hd,drive=d2,bus=ahci0.1",
            "-device qemu-xhci,id=xhci -device usb-storage,bus=xhci.0,drive=d3",
        ] {
            assert!(args.contains(device), "{device} missing from {args}");
        }
        for (path, disk) in paths.iter().zip(PROBE_DISKS) {
            assert_eq!(std::fs::metadata(path).unwrap().len(), disk.size_bytes);
        }
    }
}
