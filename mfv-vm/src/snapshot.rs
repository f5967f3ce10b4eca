//! VM snapshots through libvirt (internal qcow2 snapshots): create, list, revert, delete,
//! and a clear refusal where libvirt cannot snapshot.

use quick_xml::events::{BytesText, Event};
use serde::Serialize;
use virt::domain::Domain;
use virt::domain_snapshot::DomainSnapshot;
use virt::error::ErrorNumber;

use crate::connection::Hypervisor;
use crate::libvirt::{DomainFacts, ObjectKind, VirtError, build_xml, code, operation_error};

/// One snapshot of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SnapshotInfo {
    /// The snapshot's name.
    pub name: String,
    /// The user's description, empty when none was given.
    pub description: String,
    /// When it was taken, seconds since the Unix epoch.
    pub created_unix: u64,
    /// The VM's state when it was taken (`running`, `shutoff`...), as libvirt names it.
    pub vm_state: String,
    /// The VM currently runs from this snapshot.
    pub current: bool,
}

const WHAT_WORKS: &str = "shut the VM down and clone its disk volumes instead (storage clone), \
                          or give it qcow2 disks";

impl Hypervisor {
    /// Takes a snapshot of the VM's disks (and memory when it runs).
    ///
    /// Refused with [`VirtError::Unsupported`] for UEFI (pflash) guests and for disks that
    /// are not qcow2, which internal snapshots cannot cover.
    pub fn create_snapshot(
        &self,
        vm: &str,
        name: &str,
        description: &str,
    ) -> Result<SnapshotInfo, VirtError> {
        let domain = self.domain(vm)?;
        self.check_snapshot_support(&domain, vm)?;
        let xml = build_xml(name, |writer| {
            writer
                .create_element("domainsnapshot")
                .write_inner_content(|writer| {
                    writer
                        .create_element("name")
                        .write_text_content(BytesText::new(name))?;
                    if !description.is_empty() {
                        writer
                            .create_element("description")
                            .write_text_content(BytesText::new(description))?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
        let snapshot = domain
            .create_snapshot_xml(&xml, 0)
            .map_err(|error| match code(&error) {
                Some(ErrorNumber::OperationUnsupported | ErrorNumber::ConfigUnsupported) => {
                    VirtError::Unsupported {
                        operation: "snapshot",
                        name: vm.to_owned(),
                        reason: error.message().to_owned(),
                        what_works: WHAT_WORKS,
                    }
                }
                _ => operation_error("snapshot", ObjectKind::Snapshot, name, error),
            })?;
        snapshot_info(&snapshot, name)
    }

    /// The VM's snapshots, oldest first.
    pub fn list_snapshots(&self, vm: &str) -> Result<Vec<SnapshotInfo>, VirtError> {
        let domain = self.domain(vm)?;
        let snapshots = domain
            .list_all_snapshots(0)
            .map_err(|error| operation_error("list snapshots of", ObjectKind::Vm, vm, error))?;
        let mut infos = snapshots
            .iter()
            .map(|snapshot| snapshot_info(snapshot, vm))
            .collect::<Result<Vec<_>, _>>()?;
        infos.sort_by(|a, b| (a.created_unix, &a.name).cmp(&(b.created_unix, &b.name)));
        Ok(infos)
    }

    /// Returns the VM to the snapshot: its disks, and its memory and run state when the
    /// snapshot was taken while it ran.
    pub fn revert_snapshot(&self, vm: &str, name: &str) -> Result<(), VirtError> {
        self.snapshot(vm, name)?
            .revert(0)
            .map_err(|error| operation_error("revert to", ObjectKind::Snapshot, name, error))
    }

    /// Deletes the snapshot; the VM's current state is not touched.
    pub fn delete_snapshot(&self, vm: &str, name: &str) -> Result<(), VirtError> {
        self.snapshot(vm, name)?
            .delete(0)
            .map_err(|error| operation_error("delete", ObjectKind::Snapshot, name, error))
    }

    fn snapshot(&self, vm: &str, name: &str) -> Result<DomainSnapshot, VirtError> {
        Domain::lookup_snapshot_by_name(&self.domain(vm)?, name, 0)
            .map_err(|error| operation_error("look up", ObjectKind::Snapshot, name, error))
    }

    fn check_snapshot_support(&self, domain: &Domain, vm: &str) -> Result<(), VirtError> {
        let facts = DomainFacts::parse(vm, &self.inactive_xml(domain, vm)?)?;
        if facts.pflash_firmware {
            return Err(VirtError::Unsupported {
                operation: "snapshot",
                name: vm.to_owned(),
                reason: "internal snapshots of UEFI (pflash firmware) guests are not supported \
                         by libvirt"
                    .into(),
                what_works: WHAT_WORKS,
            });
        }
        let not_qcow2 = facts.disks.iter().find(|disk| {
            disk.device == "disk"
                && disk
                    .format
                    .as_deref()
                    .is_some_and(|format| format != "qcow2")
        });
        if let Some(disk) = not_qcow2 {
            return Err(VirtError::Unsupported {
                operation: "snapshot",
                name: vm.to_owned(),
                reason: format!(
                    "disk {} is {}, and internal snapshots need qcow2 disks",
                    disk.target,
                    disk.format.as_deref().unwrap_or("raw")
                ),
                what_works: WHAT_WORKS,
            });
        }
        Ok(())
    }
}

fn snapshot_info(snapshot: &DomainSnapshot, name: &str) -> Result<SnapshotInfo, VirtError> {
    let read = |error| operation_error("read", ObjectKind::Snapshot, name, error);
    let xml = snapshot.xml_desc(0).map_err(read)?;
    let mut info = parse_snapshot_xml(name, &xml)?;
    info.current = snapshot.is_current(0).map_err(read)?;
    Ok(info)
}

/// Reads name, description, creation time and state from a `<domainsnapshot>` document.
fn parse_snapshot_xml(name: &str, xml: &str) -> Result<SnapshotInfo, VirtError> {
    let mut info = SnapshotInfo {
        name: String::new(),
        description: String::new(),
        created_unix: 0,
        vm_state: String::new(),
        current: false,
    };
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|source| VirtError::Xml {
            name: name.to_owned(),
            source,
        })?;
        match event {
            Event::Start(element) => path.push(element.name().as_ref().to_vec()),
            Event::End(_) => {
                path.pop();
            }
            Event::Text(text) if path.len() == 2 => {
                let text = text.unescape().map_err(|source| VirtError::Xml {
                    name: name.to_owned(),
                    source,
                })?;
                let text = text.trim().to_owned();
                match path[1].as_slice() {
                    b"name" => info.name = text,
                    b"description" => info.description = text,
                    b"creationTime" => info.created_unix = text.parse().unwrap_or(0),
                    b"state" => info.vm_state = text,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_xml_fields() {
        let info = parse_snapshot_xml(
            "s",
            "<domainsnapshot><name>before-upgrade</name><description>a &amp; b</description>\
             <state>running</state><creationTime>1764136800</creationTime>\
             <domain><name>vm</name></domain></domainsnapshot>",
        )
        .unwrap();
        assert_eq!(info.name, "before-upgrade");
        assert_eq!(info.description, "a & b");
        assert_eq!(info.vm_state, "running");
        assert_eq!(info.created_unix, 1_764_136_800);
    }
}
