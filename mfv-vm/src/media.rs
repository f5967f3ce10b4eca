//! Removable media: putting an ISO image in a VM's CD-ROM drive and ejecting it, on a
//! running VM as on a stopped one.
//!
//! The drive itself is part of the VM's hardware (the spec's `cdrom` creates it); only what
//! it holds changes here, so the guest sees a disc inserted or ejected rather than a device
//! added. A persistent VM keeps the change across restarts.

use std::path::Path;

use virt::sys;

use crate::connection::Hypervisor;
use crate::libvirt::{DomainFacts, ObjectKind, VirtError, operation_error};

impl Hypervisor {
    /// Puts the image `iso` in the VM's CD-ROM drive, replacing what it held, or ejects
    /// the drive's media when `iso` is `None`. A running VM sees the change at once; a
    /// persistent VM keeps it.
    pub fn change_media(&self, name: &str, iso: Option<&Path>) -> Result<(), VirtError> {
        let domain = self.domain(name)?;
        let live = domain.is_active().unwrap_or(false);
        let persistent = domain.is_persistent().unwrap_or(true);
        let xml = if live {
            domain
                .xml_desc(0)
                .map_err(|error| operation_error("read", ObjectKind::Vm, name, error))?
        } else {
            self.inactive_xml(&domain, name)?
        };
        let facts = DomainFacts::parse(name, &xml)?;
        let Some(drive) = facts.disks.iter().find(|disk| disk.device == "cdrom") else {
            return Err(VirtError::NoCdromDrive {
                name: name.to_owned(),
            });
        };
        let device = crate::xml::cdrom_device_xml(
            &drive.target,
            drive.bus.as_deref().unwrap_or("sata"),
            iso,
        );
        let mut flags = 0;
        if live {
            flags |= sys::VIR_DOMAIN_AFFECT_LIVE;
        }
        if persistent {
            flags |= sys::VIR_DOMAIN_AFFECT_CONFIG;
        }
        if iso.is_none() {
            // The guest may have locked the tray; an eject asked for by the host wins.
            flags |= sys::VIR_DOMAIN_DEVICE_MODIFY_FORCE;
        }
        let operation = if iso.is_some() {
            "change the CD-ROM of"
        } else {
            "eject the CD-ROM of"
        };
        domain
            .update_device_flags(&device, flags)
            .map_err(|error| match iso {
                Some(iso)
                    if error
                        .message()
                        .to_ascii_lowercase()
                        .contains("cannot access storage file") =>
                {
                    VirtError::MediaUnreadable {
                        path: iso.to_owned(),
                        source: error,
                    }
                }
                _ => operation_error(operation, ObjectKind::Vm, name, error),
            })
    }

    /// The path on the host of the volume `volume` of pool `pool`.
    pub fn volume_path(&self, pool: &str, volume: &str) -> Result<String, VirtError> {
        self.pool(pool)?
            .lookup_storage_vol_by_name(volume)
            .and_then(|found| found.path())
            .map_err(|error| operation_error("look up", ObjectKind::Volume, volume, error))
    }
}
