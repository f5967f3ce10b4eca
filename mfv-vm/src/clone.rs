//! Cloning a shut-off VM into a new, independent one.
//!
//! Why full copies and not [`Hypervisor::clone_volume`]'s linked overlays: a clone is meant
//! to live on its own (the source may change, be deleted, or be cloned again), and an
//! overlay on the source's volume would break the moment the source writes to it. Each
//! disk volume is copied by libvirt (`virStorageVolCreateXMLFrom`, qemu-img for qcow2), so
//! a qcow2 chain is flattened into one image and the copy works in every pool type.
//!
//! The clone is the source's spec read back from its definition with a new name, no UUID and
//! no MAC addresses (libvirt generates new ones), its disks on the copies, and autostart
//! off. CD-ROM media stays the same image: it is read-only and shared. The source must be
//! shut off, so the copies are consistent without the guest's help. Definitions holding
//! what cannot be copied safely (a disk or NIC kept as raw XML, a host device) are refused
//! before anything is made; a failure part-way removes what the clone made.

use std::path::PathBuf;

use virt::storage_vol::StorageVol;

use crate::connection::Hypervisor;
use crate::libvirt::{ObjectKind, VirtError, operation_error};
use crate::storage::copy_volume_xml;
use crate::{DiskSource, HostCapabilities, SpecErrors, SpecLimits, VmSpec, VmState, XmlError};

/// Why a VM cannot be cloned, or the clone failed.
#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    /// The source VM is not shut off.
    #[error(
        "VM {name:?} is {state}: a VM is cloned only when shut off, so its disks are copied consistently; shut it down first"
    )]
    SourceNotShutOff {
        /// The source VM.
        name: String,
        /// Its state.
        state: VmState,
    },
    /// A VM of the new name exists.
    #[error("a VM named {name:?} already exists: choose another name for the clone")]
    NameTaken {
        /// The new name.
        name: String,
    },
    /// A volume the clone's disk would be copied into exists.
    #[error(
        "volume {volume:?} already exists in storage pool {pool:?}: the clone's disk {target} would be copied there; choose another name or delete the volume"
    )]
    VolumeTaken {
        /// The pool.
        pool: String,
        /// The volume.
        volume: String,
        /// The disk's target (`vda`).
        target: String,
    },
    /// The clone's spec is invalid (its name, mostly).
    #[error(transparent)]
    InvalidSpec(SpecErrors),
    /// The source holds something that cannot be copied safely.
    #[error("VM {name:?} cannot be cloned: {reason}")]
    NotCopyable {
        /// The source VM.
        name: String,
        /// What is in the way.
        reason: String,
    },
    /// The clone's domain XML could not be written.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// libvirt refused a look-up or the definition.
    #[error(transparent)]
    Virt(#[from] VirtError),
    /// Copying a disk failed.
    #[error(
        "copying disk {} ({}/{} to {}/{}) failed",
        copy.target, copy.pool, copy.source_volume, copy.pool, copy.volume
    )]
    Copy {
        /// The copy that failed.
        copy: Box<DiskCopy>,
        /// libvirt's error.
        #[source]
        source: VirtError,
    },
    /// The clone failed and some of what it made could not be removed.
    #[error("{failure}; left behind: {}", leftovers.join(", "))]
    LeftBehind {
        /// Why the clone failed.
        failure: Box<CloneError>,
        /// What stays, each with why it could not be removed.
        leftovers: Vec<String>,
    },
}

/// One disk's copy in a [`ClonePlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCopy {
    /// The disk's target (`vda`).
    pub target: String,
    /// The pool both volumes are in.
    pub pool: String,
    /// The source's volume.
    pub source_volume: String,
    /// The copy's name: `{clone}-{target}` with the source's extension.
    pub volume: String,
}

/// What a clone will make, checked against what exists: the new VM's spec and one copy per
/// disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClonePlan {
    /// The source VM.
    pub source: String,
    /// The clone's spec, its disks still on the source's volumes until the copies exist.
    pub spec: VmSpec,
    /// The disks to copy, in the spec's order.
    pub copies: Vec<DiskCopy>,
}

/// Progress of [`Hypervisor::clone_vm`]: the disk being copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneProgress<'a> {
    /// Disks copied so far.
    pub copied: usize,
    /// Disks in all.
    pub disks: usize,
    /// The disk being copied now, `None` once every disk is copied.
    pub copying: Option<&'a DiskCopy>,
}

impl Hypervisor {
    /// Checks that the shut-off VM `source` can be cloned as `name` and says what the clone
    /// will make; nothing is changed. Refused when the source is not shut off, `name` is
    /// taken by a VM or the clone's volume names by volumes, or the source holds something
    /// that cannot be copied safely.
    pub fn plan_clone(&self, source: &str, name: &str) -> Result<ClonePlan, CloneError> {
        let state = self.info(source)?.summary.state;
        if state != VmState::ShutOff {
            return Err(CloneError::SourceNotShutOff {
                name: source.to_owned(),
                state,
            });
        }
        let not_copyable = |reason: String| CloneError::NotCopyable {
            name: source.to_owned(),
            reason,
        };
        let imported = VmSpec::from_domain_xml(&self.domain_xml(source)?).map_err(|error| {
            not_copyable(format!("its definition cannot be read as a spec ({error})"))
        })?;
        if let Some(kept) = imported.preserved.iter().find(|kept| {
            kept.starts_with("devices/disk")
                || kept.as_str() == "devices/interface"
                || kept.as_str() == "devices/hostdev"
        }) {
            return Err(not_copyable(format!(
                "its definition holds {kept} as raw XML, which a clone would share with it"
            )));
        }
        let mut spec = imported.spec;
        spec.name = name.to_owned();
        spec.uuid = None;
        spec.autostart = false;
        for nic in &mut spec.nics {
            nic.mac = None;
        }
        spec.validate(&SpecLimits::default())
            .map_err(CloneError::InvalidSpec)?;
        match self.domain(name) {
            Ok(_) => {
                return Err(CloneError::NameTaken {
                    name: name.to_owned(),
                });
            }
            Err(VirtError::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let mut copies = Vec::new();
        for disk in &spec.disks {
            let (pool, source_volume) = match &disk.source {
                DiskSource::NewVolume { pool, .. } => (pool.clone(), disk.volume_name(source)),
                DiskSource::Volume { pool, volume, .. } => (pool.clone(), volume.clone()),
                DiskSource::Image { path, .. } => {
                    self.volume_at(&path.to_string_lossy()).map_err(|_| {
                        not_copyable(format!(
                            "disk {} is the file {}, which is in no storage pool",
                            disk.target,
                            path.display()
                        ))
                    })?
                }
            };
            let volume = match &disk.source {
                DiskSource::NewVolume { .. } => disk.volume_name(name),
                _ => copy_name(name, &disk.target, &source_volume),
            };
            match self.volume_info(&pool, &volume) {
                Ok(_) => {
                    return Err(CloneError::VolumeTaken {
                        pool,
                        volume,
                        target: disk.target.clone(),
                    });
                }
                Err(VirtError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            copies.push(DiskCopy {
                target: disk.target.clone(),
                pool,
                source_volume,
                volume,
            });
        }
        Ok(ClonePlan {
            source: source.to_owned(),
            spec,
            copies,
        })
    }

    /// Makes the clone `plan` describes: copies every disk (calling `progress` before each
    /// and once at the end), then defines the new VM (for KVM or TCG as `host` allows) on
    /// the copies. On a failure the copies made so far are deleted and the error says what
    /// failed, and what could not be removed.
    ///
    /// The source must stay shut off meanwhile: callers keep it from being started.
    pub fn clone_vm(
        &self,
        plan: &ClonePlan,
        host: &HostCapabilities,
        progress: &mut dyn FnMut(CloneProgress<'_>),
    ) -> Result<String, CloneError> {
        let mut spec = plan.spec.clone();
        let mut copied: Vec<&DiskCopy> = Vec::new();
        for (index, copy) in plan.copies.iter().enumerate() {
            progress(CloneProgress {
                copied: index,
                disks: plan.copies.len(),
                copying: Some(copy),
            });
            let path = match self.copy_volume(copy) {
                Ok(path) => path,
                Err(failure) => return Err(self.undo_clone(&copied, None, failure)),
            };
            copied.push(copy);
            if let Some(disk) = spec.disks.get_mut(index) {
                match &mut disk.source {
                    DiskSource::NewVolume { .. } => {}
                    DiskSource::Volume { volume, .. } => volume.clone_from(&copy.volume),
                    DiskSource::Image { path: image, .. } => *image = PathBuf::from(&path),
                }
            }
        }
        progress(CloneProgress {
            copied: plan.copies.len(),
            disks: plan.copies.len(),
            copying: None,
        });
        let xml = match spec.to_domain_xml(host) {
            Ok(xml) => xml,
            Err(failure) => return Err(self.undo_clone(&copied, None, failure.into())),
        };
        match self.define(&xml) {
            Ok(name) => Ok(name),
            Err(failure) => Err(self.undo_clone(&copied, Some(&spec.name), failure.into())),
        }
    }

    /// Copies one disk's volume in full; returns the copy's path.
    fn copy_volume(&self, copy: &DiskCopy) -> Result<String, CloneError> {
        let failed = |source| CloneError::Copy {
            copy: Box::new(copy.clone()),
            source,
        };
        let pool = self.pool(&copy.pool).map_err(failed)?;
        let source = pool
            .lookup_storage_vol_by_name(&copy.source_volume)
            .map_err(|error| {
                failed(operation_error(
                    "look up",
                    ObjectKind::Volume,
                    &copy.source_volume,
                    error,
                ))
            })?;
        let xml = copy_volume_xml(&source, &copy.source_volume, &copy.volume).map_err(failed)?;
        let made = StorageVol::create_xml_from(&pool, &xml, &source, 0).map_err(|error| {
            failed(operation_error(
                "copy into",
                ObjectKind::Volume,
                &copy.volume,
                error,
            ))
        })?;
        made.path().map_err(|error| {
            failed(operation_error(
                "read",
                ObjectKind::Volume,
                &copy.volume,
                error,
            ))
        })
    }

    /// Removes what a failed clone made (its definition, when `defined`, and its copies);
    /// `failure` is what the caller reports, with anything that stays.
    fn undo_clone(
        &self,
        copied: &[&DiskCopy],
        defined: Option<&str>,
        failure: CloneError,
    ) -> CloneError {
        let mut leftovers = Vec::new();
        if let Some(name) = defined {
            match self.domain(name).and_then(|domain| {
                domain
                    .undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_NVRAM)
                    .map_err(|error| operation_error("undefine", ObjectKind::Vm, name, error))
            }) {
                Ok(()) | Err(VirtError::NotFound { .. }) => {}
                Err(error) => leftovers.push(format!("VM {name}: {error}")),
            }
        }
        for copy in copied {
            if let Err(error) = self.delete_volume(&copy.pool, &copy.volume) {
                leftovers.push(format!("{}/{}: {error}", copy.pool, copy.volume));
            }
        }
        if leftovers.is_empty() {
            failure
        } else {
            CloneError::LeftBehind {
                failure: Box::new(failure),
                leftovers,
            }
        }
    }

    /// The pool and name of the volume at `path`.
    fn volume_at(&self, path: &str) -> Result<(String, String), VirtError> {
        let read = |error| operation_error("look up", ObjectKind::Volume, path, error);
        let volume = self
            .connection
            .lookup_storage_vol_by_path(path)
            .map_err(read)?;
        let pool = volume.lookup_storage_pool().map_err(read)?;
        Ok((pool.name().map_err(read)?, volume.name().map_err(read)?))
    }
}

/// The name of the clone `clone`'s copy of the volume `source_volume` of its disk `target`:
/// `{clone}-{target}`, with the source's extension (`.qcow2`, `.img`) when it has one.
fn copy_name(clone: &str, target: &str, source_volume: &str) -> String {
    match source_volume.rsplit_once('.') {
        Some((stem, extension))
            if !stem.is_empty()
                && !extension.is_empty()
                && extension.len() <= 5
                && extension.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!("{clone}-{target}.{extension}")
        }
        _ => format!("{clone}-{target}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_named_after_the_clone_and_disk_keeping_the_extension() {
        assert_eq!(copy_name("web-2", "vda", "base.qcow2"), "web-2-vda.qcow2");
        assert_eq!(copy_name("web-2", "vdb", "data.img"), "web-2-vdb.img");
        assert_eq!(copy_name("web-2", "vdb", "data"), "web-2-vdb");
        assert_eq!(copy_name("web-2", "vdb", ".hidden"), "web-2-vdb");
        assert_eq!(copy_name("web-2", "vdb", "a.b c"), "web-2-vdb");
    }
}
