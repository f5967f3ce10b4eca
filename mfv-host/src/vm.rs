//! VM workflows that span more than one call into mfv-vm or join it with the config store:
//! creating a VM (validated among the VMs that exist, its new volumes removed again when the
//! definition fails), describing one (its live figures with its spec read back), and the persistence rule for VMs: libvirt keeps its definitions in RAM
//! on the appliance, so they are exported into the config store's directory (`vms/` beside
//! `mfv.toml`, written with the volume writable only for that moment) and restored from it
//! at boot.

use std::path::Path;

use mfv_config::store::{DirectoryStore, StoreError};
use mfv_vm::{
    ExistingVm, HostCapabilities, Hypervisor, RestoreReport, SpecErrors, SpecLimits, VirtError,
    VmInfo, VmSpec, XmlError,
};
use serde::Serialize;

/// The directory beside `mfv.toml` that holds the exported VM definitions.
pub const DEFINITIONS_DIR: &str = "vms";

/// A VM workflow failed.
#[derive(Debug, thiserror::Error)]
pub enum VmWorkflowError {
    /// The spec is invalid; every problem names its field.
    #[error("invalid VM spec ({} problems)", errors.errors().len())]
    InvalidSpec {
        /// Every problem.
        errors: SpecErrors,
    },
    /// The domain XML could not be written for the spec.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// libvirt refused an operation.
    #[error(transparent)]
    Virt(#[from] VirtError),
    /// Creating the VM failed and some volumes made for it could not be removed again.
    #[error("{failure}; the volumes made for it stay: {}", leftovers.join(", "))]
    VolumesLeftBehind {
        /// Why the creation failed.
        failure: VirtError,
        /// `POOL/VOLUME: why it could not be removed`, for each volume left.
        leftovers: Vec<String>,
    },
    /// The definitions could not be written to or read from the config store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The config volume could not be opened or closed around a save.
    #[error(transparent)]
    Volume(#[from] Box<crate::config::ConfigKeyError>),
}

/// A VM [`create`] defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedVm {
    /// Its name.
    pub name: String,
    /// Whether it runs under KVM (else TCG).
    pub kvm: bool,
}

/// Validates `spec` among the VMs that exist, creates its new volumes, defines it (for KVM or
/// TCG as `host` allows) and sets its autostart. When a volume or the definition fails, the
/// volumes made so far are removed again and nothing is left behind.
pub fn create(
    hypervisor: &Hypervisor,
    spec: &VmSpec,
    host: &HostCapabilities,
) -> Result<CreatedVm, VmWorkflowError> {
    let existing = existing_vms(hypervisor)?;
    spec.validate_among(&SpecLimits::default(), &existing)
        .map_err(|errors| VmWorkflowError::InvalidSpec { errors })?;
    // A pool that cannot be read is left to the volume's creation to report.
    let spec = spec
        .with_pool_formats(|pool| hypervisor.pool_volume_format(pool).ok().flatten())
        .map_err(|errors| VmWorkflowError::InvalidSpec { errors })?;
    let xml = spec.to_domain_xml(host)?;
    let mut created = Vec::new();
    for volume in spec.new_volumes() {
        if let Err(failure) = hypervisor.create_volume_as(
            &volume.pool,
            &volume.name,
            volume.size_gib << 30,
            volume.format,
        ) {
            return Err(rolled_back(hypervisor, &created, failure));
        }
        created.push((volume.pool, volume.name));
    }
    let name = match hypervisor.define(&xml) {
        Ok(name) => name,
        Err(failure) => return Err(rolled_back(hypervisor, &created, failure)),
    };
    if spec.autostart {
        hypervisor.set_autostart(&name, true)?;
    }
    Ok(CreatedVm {
        name,
        kvm: host.kvm_usable,
    })
}

/// A VM as the API and `mfv` show it: its live figures and its spec as mfv-vm reads its
/// definition back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct VmDescription {
    /// State, autostart, CPU and memory figures, counters.
    #[serde(flatten)]
    pub info: VmInfo,
    /// The spec read back from the definition; `None` when the definition cannot be read as
    /// one (`spec_problem` says why).
    pub spec: Option<VmSpec>,
    /// Why the definition could not be read as a spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_problem: Option<String>,
    /// What the definition holds beyond the spec, kept verbatim (`devices/video`).
    pub preserved: Vec<String>,
    /// What the spec could not keep of the definition, in words.
    pub dropped: Vec<String>,
}

/// The VM `name`'s live figures and its spec read back from its definition.
pub fn describe(hypervisor: &Hypervisor, name: &str) -> Result<VmDescription, VirtError> {
    let info = hypervisor.info(name)?;
    let xml = hypervisor.domain_xml(name)?;
    Ok(match VmSpec::from_domain_xml(&xml) {
        Ok(imported) => VmDescription {
            info,
            spec: Some(imported.spec),
            spec_problem: None,
            preserved: imported.preserved,
            dropped: imported.dropped,
        },
        Err(problem) => VmDescription {
            info,
            spec: None,
            spec_problem: Some(problem.to_string()),
            preserved: Vec::new(),
            dropped: Vec::new(),
        },
    })
}

/// Removes the volumes made for a VM whose creation failed; the failure is what the caller
/// reports, with the volumes that could not be removed.
fn rolled_back(
    hypervisor: &Hypervisor,
    volumes: &[(String, String)],
    failure: VirtError,
) -> VmWorkflowError {
    let leftovers: Vec<String> = volumes
        .iter()
        .filter_map(|(pool, name)| {
            hypervisor
                .delete_volume(pool, name)
                .err()
                .map(|error| format!("{pool}/{name}: {error}"))
        })
        .collect();
    if leftovers.is_empty() {
        VmWorkflowError::Virt(failure)
    } else {
        VmWorkflowError::VolumesLeftBehind { failure, leftovers }
    }
}

/// The VMs already defined, as far as name, UUID and MAC clashes go. A domain whose XML
/// cannot be read back still blocks its name and UUID.
pub fn existing_vms(hypervisor: &Hypervisor) -> Result<Vec<ExistingVm>, VirtError> {
    let mut existing = Vec::new();
    for vm in hypervisor.list()? {
        let imported = hypervisor
            .domain_xml(&vm.name)
            .ok()
            .and_then(|xml| VmSpec::from_domain_xml(&xml).ok());
        existing.push(match imported {
            Some(imported) => ExistingVm::from(&imported.spec),
            None => ExistingVm {
                name: vm.name.clone(),
                uuid: vm.uuid.parse().ok(),
                macs: Vec::new(),
            },
        });
    }
    Ok(existing)
}

/// Exports every VM definition into the store's [`DEFINITIONS_DIR`], with the volume writable
/// only while writing; returns the names exported.
pub fn save_definitions(
    hypervisor: &Hypervisor,
    store: &DirectoryStore,
) -> Result<Vec<String>, VmWorkflowError> {
    Ok(store.write_beside(DEFINITIONS_DIR, |dir| {
        hypervisor
            .export_definitions(dir)
            .map_err(|error| Box::new(error) as Box<dyn std::error::Error + Send + Sync>)
    })?)
}

/// Defines the VMs exported in the store's [`DEFINITIONS_DIR`] (restoring twice changes
/// nothing); a store without exported definitions restores nothing.
pub fn restore_definitions(
    hypervisor: &Hypervisor,
    store_dir: &Path,
) -> Result<RestoreReport, VmWorkflowError> {
    Ok(restore_definitions_from(hypervisor, &store_dir.join(DEFINITIONS_DIR))?.unwrap_or_default())
}

/// Defines the VMs exported in `dir`; `None` when `dir` holds no export.
pub fn restore_definitions_from(
    hypervisor: &Hypervisor,
    dir: &Path,
) -> Result<Option<RestoreReport>, VmWorkflowError> {
    // Whatever is at the index's name (a link included, which the reader then refuses)
    // means there is something to restore.
    if dir.join(mfv_vm::INDEX_FILE).symlink_metadata().is_err() {
        return Ok(None);
    }
    Ok(Some(hypervisor.restore_definitions(dir)?))
}

#[cfg(test)]
mod tests {
    use mfv_config::store::{ConfigStore, PlainDirectory};

    use super::*;

    /// A node of libvirt's in-process test driver of its own (`test:///default` is shared by
    /// every connection of the process): one directory pool, `default-pool`, and one VM,
    /// `test`. Each connection to the node file starts from the file, like a rebooted host.
    struct TestNode {
        dir: tempfile::TempDir,
    }

    impl TestNode {
        fn new() -> TestNode {
            let dir = tempfile::tempdir().unwrap();
            let node = "<node>\n\
                 <domain type='test'><name>test</name>\
                 <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory>65536</memory>\
                 <os><type>hvm</type></os></domain>\n\
                 <pool type='dir'><name>default-pool</name>\
                 <target><path>/default-pool</path></target></pool>\n\
                 </node>\n";
            std::fs::write(dir.path().join("node.xml"), node).unwrap();
            TestNode { dir }
        }

        fn connect(&self) -> Hypervisor {
            Hypervisor::connect(&format!("test://{}/node.xml", self.dir.path().display())).unwrap()
        }
    }

    fn tcg() -> HostCapabilities {
        let mut host = HostCapabilities::probe();
        host.kvm_usable = false;
        host
    }

    fn spec(name: &str, pools: &[&str]) -> VmSpec {
        let disks: Vec<_> = pools
            .iter()
            .enumerate()
            .map(|(index, pool)| {
                serde_json::json!({
                    "target": format!("vd{}", char::from(b'a' + index as u8)),
                    "source": {"new_volume": {"pool": pool, "size_gib": 1}}
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "name": name, "vcpus": 1, "memory_mib": 64, "disks": disks, "autostart": true
        }))
        .unwrap()
    }

    fn volumes(hypervisor: &Hypervisor) -> Vec<String> {
        hypervisor
            .list_volumes("default-pool")
            .unwrap()
            .into_iter()
            .map(|volume| volume.name)
            .collect()
    }

    #[test]
    fn a_vm_is_created_with_its_volume_and_autostart() {
        let hypervisor = TestNode::new().connect();
        let created = create(&hypervisor, &spec("web1", &["default-pool"]), &tcg()).unwrap();
        assert_eq!(
            created,
            CreatedVm {
                name: "web1".into(),
                kvm: false
            }
        );
        let listed = hypervisor.list().unwrap();
        let web1 = listed.iter().find(|vm| vm.name == "web1").unwrap();
        assert!(web1.autostart);
        assert_eq!(volumes(&hypervisor).len(), 1);
    }

    #[test]
    fn a_description_has_the_figures_and_the_spec_read_back() {
        let hypervisor = TestNode::new().connect();
        create(&hypervisor, &spec("web3", &["default-pool"]), &tcg()).unwrap();
        let described = describe(&hypervisor, "web3").unwrap();
        assert_eq!(described.info.summary.name, "web3");
        let spec = described.spec.unwrap();
        assert_eq!((spec.name.as_str(), spec.memory_mib), ("web3", 64));
        assert_eq!(spec.disks.len(), 1);
        assert!(matches!(
            describe(&hypervisor, "absent"),
            Err(VirtError::NotFound { .. })
        ));
    }

    #[test]
    fn a_failed_creation_removes_the_volumes_it_made() {
        let hypervisor = TestNode::new().connect();
        let before = volumes(&hypervisor);
        let error = create(
            &hypervisor,
            &spec("db1", &["default-pool", "no-such-pool"]),
            &tcg(),
        )
        .unwrap_err();
        assert!(matches!(error, VmWorkflowError::Virt(_)), "{error:?}");
        assert!(error.to_string().contains("no-such-pool"), "{error}");
        assert_eq!(volumes(&hypervisor), before);
        assert!(hypervisor.list().unwrap().iter().all(|vm| vm.name != "db1"));
    }

    #[test]
    fn an_invalid_spec_or_a_taken_name_changes_nothing() {
        let hypervisor = TestNode::new().connect();
        let error = create(&hypervisor, &spec("test", &["default-pool"]), &tcg()).unwrap_err();
        let VmWorkflowError::InvalidSpec { errors } = &error else {
            panic!("{error:?}");
        };
        assert!(
            errors.errors().iter().any(|error| error.field() == "name"),
            "{errors:?}"
        );
        assert!(volumes(&hypervisor).is_empty());
    }

    #[test]
    fn definitions_go_to_the_store_and_come_back_into_an_empty_libvirt() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirectoryStore::new(dir.path(), PlainDirectory);
        let node = TestNode::new();
        assert_eq!(
            restore_definitions(&node.connect(), store.dir()).unwrap(),
            RestoreReport::default()
        );
        let hypervisor = node.connect();
        create(&hypervisor, &spec("web2", &[]), &tcg()).unwrap();
        let saved = save_definitions(&hypervisor, &store).unwrap();
        assert_eq!(saved, ["test", "web2"]);
        assert!(dir.path().join("vms/index.json").exists());
        assert!(
            store.load().unwrap().is_none(),
            "the configuration is untouched"
        );

        // A fresh test driver stands for libvirt after a reboot: only its own VM is there.
        let rebooted = node.connect();
        let report = restore_definitions(&rebooted, store.dir()).unwrap();
        assert_eq!(report.defined, ["web2"]);
        assert!(rebooted.list().unwrap().iter().any(|vm| vm.name == "web2"));
        let again = restore_definitions(&rebooted, store.dir()).unwrap();
        assert!(again.defined.is_empty() && again.updated.is_empty());
    }
}
