//! What the host offers VMs: KVM, and where the UEFI firmware is.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// Host facts the domain XML depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapabilities {
    /// `/dev/kvm` can be opened for reading and writing: domains get type `kvm`, else
    /// `qemu` (TCG). Under nested virtualization KVM can be present yet hang guests: let
    /// the user turn it off.
    pub kvm_usable: bool,
    /// The OVMF firmware for UEFI guests, when installed.
    pub ovmf: Option<OvmfFirmware>,
}

/// The OVMF firmware files of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvmfFirmware {
    /// The read-only code image, e.g. `/usr/share/OVMF/OVMF_CODE_4M.fd`.
    pub code: PathBuf,
    /// The variable store each VM gets a copy of, e.g. `/usr/share/OVMF/OVMF_VARS_4M.fd`.
    pub vars_template: PathBuf,
}

/// Where distributions install OVMF (code, variables), preferred first.
const OVMF_CANDIDATES: [(&str, &str); 3] = [
    (
        "usr/share/OVMF/OVMF_CODE_4M.fd",
        "usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    ("usr/share/OVMF/OVMF_CODE.fd", "usr/share/OVMF/OVMF_VARS.fd"),
    (
        "usr/share/edk2/ovmf/OVMF_CODE.fd",
        "usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
];

impl HostCapabilities {
    /// A host with neither KVM nor OVMF: TCG domains with BIOS only.
    pub fn tcg_only() -> Self {
        HostCapabilities {
            kvm_usable: false,
            ovmf: None,
        }
    }

    /// Probes this host (`/`).
    pub fn probe() -> Self {
        Self::probe_at(Path::new("/"))
    }

    /// Probes the tree at `root`: `root/dev/kvm` and the usual OVMF locations under
    /// `root/usr/share`. The firmware paths returned are as seen from `/` of that tree.
    pub fn probe_at(root: &Path) -> Self {
        let kvm_usable = OpenOptions::new()
            .read(true)
            .write(true)
            .open(root.join("dev/kvm"))
            .is_ok();
        let ovmf = OVMF_CANDIDATES.iter().find_map(|(code, vars)| {
            (root.join(code).is_file() && root.join(vars).is_file()).then(|| OvmfFirmware {
                code: Path::new("/").join(code),
                vars_template: Path::new("/").join(vars),
            })
        });
        HostCapabilities { kvm_usable, ovmf }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, path: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    #[test]
    fn an_empty_tree_has_nothing() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            HostCapabilities::probe_at(root.path()),
            HostCapabilities::tcg_only()
        );
    }

    #[test]
    fn finds_kvm_and_the_preferred_ovmf() {
        let root = tempfile::tempdir().unwrap();
        touch(root.path(), "dev/kvm");
        touch(root.path(), "usr/share/OVMF/OVMF_CODE.fd");
        touch(root.path(), "usr/share/OVMF/OVMF_VARS.fd");
        let host = HostCapabilities::probe_at(root.path());
        assert!(host.kvm_usable);
        assert_eq!(
            host.ovmf,
            Some(OvmfFirmware {
                code: "/usr/share/OVMF/OVMF_CODE.fd".into(),
                vars_template: "/usr/share/OVMF/OVMF_VARS.fd".into(),
            })
        );
        touch(root.path(), "usr/share/OVMF/OVMF_CODE_4M.fd");
        touch(root.path(), "usr/share/OVMF/OVMF_VARS_4M.fd");
        let host = HostCapabilities::probe_at(root.path());
        assert_eq!(
            host.ovmf.unwrap().code,
            Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd")
        );
    }

    #[test]
    fn firmware_without_its_variable_store_is_not_used() {
        let root = tempfile::tempdir().unwrap();
        touch(root.path(), "usr/share/OVMF/OVMF_CODE_4M.fd");
        assert_eq!(HostCapabilities::probe_at(root.path()).ovmf, None);
    }

    #[test]
    fn a_kvm_node_that_cannot_be_opened_is_not_usable() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("dev/kvm")).unwrap();
        assert!(!HostCapabilities::probe_at(root.path()).kvm_usable);
    }
}
