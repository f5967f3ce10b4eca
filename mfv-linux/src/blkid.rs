//! The file system signature of a block device, through libblkid. Without udevd nothing
//! records labels and UUIDs for us, so the hardware inventory and config discovery both ask
//! libblkid directly, with this one probe, and so agree on what a volume is.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use libblkid_rs::{BlkidErr, BlkidProbe, BlkidSafeprobeRet};
use nix::fcntl::OFlag;
use serde::Serialize;

/// What libblkid found on a device node; all `None` when it found nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// File system type (`ext4`, `vfat`, `iso9660`, ...).
    pub fs_type: Option<String>,
    /// File system label.
    pub label: Option<String>,
    /// File system UUID as libblkid prints it (a FAT volume id looks like `1234-ABCD`).
    pub uuid: Option<String>,
    /// Partition table type on a whole disk (`dos`, `gpt`).
    pub partition_table: Option<String>,
}

/// Why a device node could not be probed.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The node could not be opened for reading (absent, vanished, not permitted).
    #[error("cannot open {} read-only", path.display())]
    Open {
        /// The device node.
        path: PathBuf,
        /// What open(2) said.
        #[source]
        source: io::Error,
    },
    /// libblkid could not read the node (e.g. an I/O error on a medium that went away).
    #[error("libblkid cannot probe {}", path.display())]
    Probe {
        /// The device node.
        path: PathBuf,
        /// What libblkid said.
        #[source]
        source: BlkidErr,
    },
    /// More than one file system signature is on the node, so its type is unknown.
    #[error("{}: libblkid found more than one file system signature", path.display())]
    Ambiguous {
        /// The device node.
        path: PathBuf,
    },
}

impl SignatureError {
    /// The device node the error is about.
    pub fn path(&self) -> &Path {
        match self {
            SignatureError::Open { path, .. }
            | SignatureError::Probe { path, .. }
            | SignatureError::Ambiguous { path } => path,
        }
    }
}

/// Runs libblkid's superblock and partition table probes on `node`, opened read-only and
/// non-blocking (so a CD drive does not try to close its tray). Nothing is written to it.
pub fn probe_signature(node: &Path) -> Result<Signature, SignatureError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits() | OFlag::O_CLOEXEC.bits())
        .open(node)
        .map_err(|source| SignatureError::Open {
            path: node.to_owned(),
            source,
        })?;
    let probe_error = |source| SignatureError::Probe {
        path: node.to_owned(),
        source,
    };
    let mut probe = BlkidProbe::new().map_err(probe_error)?;
    probe
        .set_device(file.as_raw_fd(), 0, 0)
        .map_err(probe_error)?;
    probe.enable_superblocks(true).map_err(probe_error)?;
    probe.enable_partitions(true).map_err(probe_error)?;
    match probe.do_safeprobe().map_err(probe_error)? {
        BlkidSafeprobeRet::Success => {}
        BlkidSafeprobeRet::None => return Ok(Signature::default()),
        BlkidSafeprobeRet::Ambiguous => {
            return Err(SignatureError::Ambiguous {
                path: node.to_owned(),
            });
        }
    }
    let value = |name: &str| -> Result<Option<String>, SignatureError> {
        if !probe.has_value(name).map_err(probe_error)? {
            return Ok(None);
        }
        let value = probe.lookup_value(name).map_err(probe_error)?;
        Ok(Some(value).filter(|value| !value.is_empty()))
    };
    // `probe` is dropped before `file` (reverse declaration order): libblkid never reads
    // from a closed descriptor.
    Ok(Signature {
        fs_type: value("TYPE")?,
        label: value("LABEL")?,
        uuid: value("UUID")?,
        partition_table: value("PTTYPE")?,
    })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn image(dir: &Path, mkfs: &[&str]) -> PathBuf {
        let path = dir.join("image");
        std::fs::write(&path, vec![0u8; 2 << 20]).unwrap();
        let status = Command::new(mkfs[0])
            .args(&mkfs[1..])
            .arg(&path)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        path
    }

    #[test]
    fn a_labelled_file_system_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = image(
            dir.path(),
            &["mkfs.vfat", "-n", "MFV-CONFIG", "-i", "1234ABCD"],
        );
        let signature = probe_signature(&path).unwrap();
        assert_eq!(signature.fs_type.as_deref(), Some("vfat"));
        assert_eq!(signature.label.as_deref(), Some("MFV-CONFIG"));
        assert_eq!(signature.uuid.as_deref(), Some("1234-ABCD"));
        assert_eq!(signature.partition_table, None);
    }

    #[test]
    fn zeros_have_no_signature() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zeros");
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        assert_eq!(probe_signature(&path).unwrap(), Signature::default());
    }

    #[test]
    fn a_missing_node_names_its_path() {
        let error = probe_signature(Path::new("/nonexistent/sdz9")).unwrap_err();
        assert!(matches!(error, SignatureError::Open { .. }), "{error:?}");
        assert_eq!(error.path(), Path::new("/nonexistent/sdz9"));
        assert_eq!(error.to_string(), "cannot open /nonexistent/sdz9 read-only");
    }
}
