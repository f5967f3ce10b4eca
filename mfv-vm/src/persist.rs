//! The persistence rule for VMs: libvirt's definitions live in RAM on the appliance, so every
//! definition is exported to a directory in the config store and restored into an empty
//! libvirt at boot, after which the autostart VMs are started in a chosen order.
//!
//! The directory holds one `NAME.xml` per VM (libvirt's inactive XML, passwords included),
//! one `NAME.K.snapshot` per snapshot of the VM (libvirt's snapshot XML; K is the snapshot's
//! place, parents before children) and `index.json`, written last, naming them with the VM's
//! UUID and autostart flag and which snapshot is current. A snapshot's data lives in the VM's
//! qcow2 disks, on storage that outlives a reboot; what dies with libvirt's RAM is its
//! metadata, which restore redefines so the snapshots can be listed and reverted to again.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use mfv_linux::atomic_file::replace_file;
use mfv_linux::regular_file::read_limited;
use serde::{Deserialize, Serialize};
use virt::domain::Domain;
use virt::sys;

use crate::connection::Hypervisor;
use crate::libvirt::{ObjectKind, VirtError, operation_error};
use crate::lifecycle::VmState;

/// The name of the index file in an export directory.
pub const INDEX_FILE: &str = "index.json";
const FORMAT: &str = "mfv-vm-definitions";
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    format: String,
    version: u32,
    vms: Vec<IndexEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexEntry {
    name: String,
    uuid: String,
    autostart: bool,
    file: String,
    /// Parents before children.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    snapshots: Vec<SnapshotEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotEntry {
    name: String,
    file: String,
    current: bool,
}

/// The file extension of an exported snapshot: never `.xml`, so a snapshot file's name cannot
/// be a VM's.
const SNAPSHOT_EXTENSION: &str = ".snapshot";

/// Every persistent VM's definition and snapshot metadata as the files of an export
/// directory, held in memory: what [`Hypervisor::export_definitions`] writes. An owner that
/// keeps the last export compares two of these to see whether anything changed without
/// writing a byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Definitions {
    /// The exported VMs, by name.
    pub vms: Vec<String>,
    /// Each file's name in the directory and its content, [`INDEX_FILE`] included.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// What [`Hypervisor::restore_definitions`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    /// VMs that did not exist and were defined.
    pub defined: Vec<String>,
    /// VMs whose definition differed and was replaced.
    pub updated: Vec<String>,
    /// VMs already defined exactly as exported.
    pub unchanged: Vec<String>,
    /// Snapshots whose metadata was defined again, as `VM/SNAPSHOT`.
    pub snapshots: Vec<String>,
}

/// What [`Hypervisor::start_autostart`] did, in start order.
#[derive(Debug, Default)]
pub struct AutostartReport {
    /// VMs started.
    pub started: Vec<String>,
    /// VMs that were already running.
    pub already_running: Vec<String>,
    /// VMs that failed to start, with why; the others were still started.
    pub failed: Vec<(String, VirtError)>,
}

impl Hypervisor {
    /// Every persistent VM's definition and snapshot metadata, as the files an export
    /// directory holds.
    pub fn definitions(&self) -> Result<Definitions, VirtError> {
        let domains = self
            .connection
            .list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_PERSISTENT)
            .map_err(|error| operation_error("list", ObjectKind::Vm, "*", error))?;
        self.definitions_of(&domains)
    }

    /// The definitions of `domains`. A VM undefined since it was listed is left out: it has
    /// nothing left to keep, and the export must not fail because someone deleted a VM.
    fn definitions_of(&self, domains: &[Domain]) -> Result<Definitions, VirtError> {
        let mut files = BTreeMap::new();
        let mut entries = Vec::with_capacity(domains.len());
        for domain in domains {
            let name = domain
                .name()
                .map_err(|error| operation_error("read", ObjectKind::Vm, "?", error))?;
            let mut own_files = BTreeMap::new();
            match self.definition_of(domain, &name, &mut own_files) {
                Ok(entry) => {
                    files.append(&mut own_files);
                    entries.push(entry);
                }
                Err(VirtError::NotFound {
                    kind: ObjectKind::Vm,
                    ..
                }) => {}
                Err(error) => return Err(error),
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let index = Index {
            format: FORMAT.into(),
            version: VERSION,
            vms: entries,
        };
        let json = serde_json::to_vec_pretty(&index).map_err(|error| VirtError::BadExport {
            path: INDEX_FILE.into(),
            problem: error.to_string(),
        })?;
        files.insert(INDEX_FILE.to_owned(), json);
        Ok(Definitions {
            vms: index.vms.into_iter().map(|entry| entry.name).collect(),
            files,
        })
    }

    /// One VM's index entry; its definition and snapshot files go into `files`.
    fn definition_of(
        &self,
        domain: &Domain,
        name: &str,
        files: &mut BTreeMap<String, Vec<u8>>,
    ) -> Result<IndexEntry, VirtError> {
        let read = |error| operation_error("read", ObjectKind::Vm, name, error);
        let file = format!("{name}.xml");
        files.insert(file.clone(), self.inactive_xml(domain, name)?.into_bytes());
        Ok(IndexEntry {
            uuid: domain.uuid_string().map_err(read)?,
            autostart: domain.autostart().map_err(read)?,
            snapshots: snapshot_definitions(domain, name, files)?,
            file,
            name: name.to_owned(),
        })
    }

    /// Writes every persistent VM's definition and snapshot metadata into `dir` (created if
    /// missing), the index last, and removes the files of VMs and snapshots that no longer
    /// exist. Returns the exported VM names.
    pub fn export_definitions(&self, dir: &Path) -> Result<Vec<String>, VirtError> {
        let definitions = self.definitions()?;
        write_definitions(&definitions, dir)?;
        Ok(definitions.vms)
    }

    /// Defines every VM exported in `dir`, sets its autostart flag and defines its snapshots'
    /// metadata again (parents first, the current one marked current). Definitions that
    /// already match are left alone, so restoring twice changes nothing.
    pub fn restore_definitions(&self, dir: &Path) -> Result<RestoreReport, VirtError> {
        let index = read_index(dir)?;
        let mut report = RestoreReport::default();
        for entry in &index.vms {
            let path = dir.join(&entry.file);
            if entry.file.contains('/') || !entry.file.ends_with(".xml") {
                return Err(VirtError::BadExport {
                    path,
                    problem: format!("{:?} is not a definition file name", entry.file),
                });
            }
            let xml = read_export_file(dir, &entry.file)?;
            let existing = match self.domain(&entry.name) {
                Ok(domain) => Some(self.inactive_xml(&domain, &entry.name)?),
                Err(VirtError::NotFound { .. }) => None,
                Err(error) => return Err(error),
            };
            match existing {
                Some(current) if current == xml => report.unchanged.push(entry.name.clone()),
                Some(_) => {
                    self.define(&xml)?;
                    report.updated.push(entry.name.clone());
                }
                None => {
                    self.define(&xml)?;
                    report.defined.push(entry.name.clone());
                }
            }
            let domain = self.domain(&entry.name)?;
            if domain.autostart().unwrap_or(!entry.autostart) != entry.autostart {
                self.set_autostart(&entry.name, entry.autostart)?;
            }
            for snapshot in &entry.snapshots {
                if redefine_snapshot(&domain, &entry.name, dir, snapshot)? {
                    report
                        .snapshots
                        .push(format!("{}/{}", entry.name, snapshot.name));
                }
            }
        }
        Ok(report)
    }

    /// Starts every VM marked autostart that is not running: first those named in `order`,
    /// in that order, then the rest by name. A VM that fails to start does not stop the
    /// others.
    pub fn start_autostart(&self, order: &[String]) -> Result<AutostartReport, VirtError> {
        let mut candidates: Vec<_> = self.list()?.into_iter().filter(|vm| vm.autostart).collect();
        candidates.sort_by_key(|vm| {
            (
                order
                    .iter()
                    .position(|name| *name == vm.name)
                    .unwrap_or(usize::MAX),
                vm.name.clone(),
            )
        });
        let mut report = AutostartReport::default();
        for vm in candidates {
            if vm.state == VmState::Running || vm.state == VmState::Paused {
                report.already_running.push(vm.name);
                continue;
            }
            match self.start(&vm.name) {
                Ok(()) => report.started.push(vm.name),
                Err(error) => report.failed.push((vm.name, error)),
            }
        }
        Ok(report)
    }
}

/// Writes `definitions` into `dir` (created if missing), the index last, and removes the
/// exported files it does not name.
fn write_definitions(definitions: &Definitions, dir: &Path) -> Result<(), VirtError> {
    fs::create_dir_all(dir).map_err(|source| io_error("create", dir, source))?;
    for (file, content) in definitions
        .files
        .iter()
        .filter(|(file, _)| *file != INDEX_FILE)
    {
        write_atomically(&dir.join(file), content)?;
    }
    if let Some(index) = definitions.files.get(INDEX_FILE) {
        write_atomically(&dir.join(INDEX_FILE), index)?;
    }
    let listing = fs::read_dir(dir).map_err(|source| io_error("list", dir, source))?;
    for entry in listing {
        let entry = entry.map_err(|source| io_error("list", dir, source))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let exported = file_name.ends_with(".xml") || file_name.ends_with(SNAPSHOT_EXTENSION);
        if exported && !definitions.files.contains_key(&file_name) {
            let path = entry.path();
            fs::remove_file(&path).map_err(|source| io_error("remove", &path, source))?;
        }
    }
    Ok(())
}

/// The snapshot metadata of the VM `name`, parents first, added to `files`; returns their
/// index entries.
fn snapshot_definitions(
    domain: &Domain,
    name: &str,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Vec<SnapshotEntry>, VirtError> {
    let snapshots = domain
        .list_all_snapshots(sys::VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL)
        .map_err(|error| operation_error("list snapshots of", ObjectKind::Vm, name, error))?;
    let mut entries = Vec::with_capacity(snapshots.len());
    for (place, snapshot) in snapshots.iter().enumerate() {
        let snapshot_name = snapshot
            .name()
            .map_err(|error| operation_error("read", ObjectKind::Snapshot, name, error))?;
        let read = |error| operation_error("read", ObjectKind::Snapshot, &snapshot_name, error);
        let xml = snapshot
            .xml_desc(sys::VIR_DOMAIN_SNAPSHOT_XML_SECURE)
            .map_err(read)?;
        let file = format!("{name}.{place}{SNAPSHOT_EXTENSION}");
        files.insert(file.clone(), xml.into_bytes());
        entries.push(SnapshotEntry {
            current: snapshot.is_current(0).map_err(read)?,
            name: snapshot_name,
            file,
        });
    }
    Ok(entries)
}

/// Defines the metadata of `snapshot` of the VM `vm` from `dir` again, unless libvirt
/// already has it exactly so. Returns whether it was defined.
fn redefine_snapshot(
    domain: &Domain,
    vm: &str,
    dir: &Path,
    snapshot: &SnapshotEntry,
) -> Result<bool, VirtError> {
    if snapshot.file.contains('/') || !snapshot.file.ends_with(SNAPSHOT_EXTENSION) {
        return Err(VirtError::BadExport {
            path: dir.join(&snapshot.file),
            problem: format!("{:?} is not a snapshot file name", snapshot.file),
        });
    }
    let xml = read_export_file(dir, &snapshot.file)?;
    if let Ok(existing) = Domain::lookup_snapshot_by_name(domain, &snapshot.name, 0) {
        let same = existing
            .xml_desc(sys::VIR_DOMAIN_SNAPSHOT_XML_SECURE)
            .is_ok_and(|current| current == xml);
        if same && existing.is_current(0).unwrap_or(!snapshot.current) == snapshot.current {
            return Ok(false);
        }
    }
    let mut flags = sys::VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE;
    if snapshot.current {
        flags |= sys::VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT;
    }
    domain.create_snapshot_xml(&xml, flags).map_err(|error| {
        operation_error(
            "redefine",
            ObjectKind::Snapshot,
            &format!("{vm}/{}", snapshot.name),
            error,
        )
    })?;
    Ok(true)
}

/// The largest export file restore reads; libvirt's XML of a VM and the index are far smaller.
const MAX_EXPORT_FILE_BYTES: u64 = 1 << 20;

/// Reads `dir/name` of an export: it lies on the config volume, which anyone may have written,
/// so only a regular file of at most [`MAX_EXPORT_FILE_BYTES`] is read, never through a link
/// and never waiting on a FIFO.
fn read_export_file(dir: &Path, name: &str) -> Result<String, VirtError> {
    let bytes = read_limited(dir, name, MAX_EXPORT_FILE_BYTES).map_err(VirtError::ExportFile)?;
    String::from_utf8(bytes).map_err(|_| VirtError::BadExport {
        path: dir.join(name),
        problem: "not UTF-8 text".into(),
    })
}

fn read_index(dir: &Path) -> Result<Index, VirtError> {
    let path = dir.join(INDEX_FILE);
    let text = read_export_file(dir, INDEX_FILE)?;
    let index: Index = serde_json::from_str(&text).map_err(|error| VirtError::BadExport {
        path: path.clone(),
        problem: error.to_string(),
    })?;
    if index.format != FORMAT || index.version != VERSION {
        return Err(VirtError::BadExport {
            path,
            problem: format!(
                "format {:?} version {} is not {FORMAT:?} version {VERSION}",
                index.format, index.version
            ),
        });
    }
    Ok(index)
}

fn io_error(operation: &'static str, path: &Path, source: std::io::Error) -> VirtError {
    VirtError::Io {
        operation,
        path: path.to_owned(),
        source,
    }
}

/// Writes `path` so that a power cut leaves the old or the new content, readable by root
/// only (a definition may hold a VNC password).
fn write_atomically(path: &Path, content: &[u8]) -> Result<(), VirtError> {
    replace_file(path, content, 0o600).map_err(|failure| VirtError::Io {
        operation: failure.step.as_str(),
        path: path.to_owned(),
        source: failure.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_undefined_between_the_listing_and_its_definition_is_left_out() {
        let hypervisor = Hypervisor::connect("test:///default").unwrap();
        let [kept, gone] = ["kept", "gone"].map(|what| format!("{what}-{}", std::process::id()));
        for name in [&kept, &gone] {
            hypervisor
                .define(&format!(
                    "<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory>\
                     <os><type>hvm</type></os></domain>"
                ))
                .unwrap();
        }
        let domains: Vec<Domain> = [&kept, &gone]
            .map(|name| hypervisor.domain(name).unwrap())
            .into();
        hypervisor
            .undefine(&gone, crate::VolumePolicy::Keep)
            .unwrap();

        let definitions = hypervisor.definitions_of(&domains).unwrap();
        assert_eq!(definitions.vms, std::slice::from_ref(&kept));
        assert!(definitions.files.contains_key(&format!("{kept}.xml")));
        assert!(!definitions.files.contains_key(&format!("{gone}.xml")));
        hypervisor
            .undefine(&kept, crate::VolumePolicy::Keep)
            .unwrap();
    }

    #[test]
    fn missing_index_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_index(dir.path()).unwrap_err();
        assert!(matches!(error, VirtError::ExportFile(_)), "{error:?}");
        assert!(error.to_string().contains("index.json"), "{error}");
    }

    #[test]
    fn newer_version_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(INDEX_FILE),
            r#"{"format": "mfv-vm-definitions", "version": 2, "vms": []}"#,
        )
        .unwrap();
        let error = read_index(dir.path()).unwrap_err();
        assert!(error.to_string().contains("version 2"), "{error}");
    }

    #[test]
    fn garbage_index_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(INDEX_FILE), "{").unwrap();
        assert!(matches!(
            read_index(dir.path()).unwrap_err(),
            VirtError::BadExport { .. }
        ));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.xml");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_into_missing_dir_names_the_path() {
        let error = write_atomically(Path::new("/nonexistent/mfv/a.xml"), b"x").unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/mfv/a.xml"),
            "{error}"
        );
    }
}
