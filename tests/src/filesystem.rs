//! Disk images that hold a labelled file system, made on the host without root: a sparse file
//! of the requested size formatted in place by `mkfs.ext4 -L` or `mkfs.vfat -n` (the tools
//! work on plain files, no loop device needed). The whole disk holds the file system, with no
//! partition table, as on a superfloppy-formatted USB stick.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

use crate::spec::{create_sparse, find_program};

/// Directories searched for mkfs programs after `PATH` (an ordinary user's `PATH` often
/// leaves out the sbin directories).
const SBIN_DIRS: [&str; 2] = ["/usr/sbin", "/sbin"];

/// A file system a test disk can be formatted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filesystem {
    /// ext4 (`mkfs.ext4` from e2fsprogs); labels up to 16 bytes.
    Ext4,
    /// FAT (`mkfs.vfat` from dosfstools); labels up to 11 characters, upper case by convention.
    Vfat,
}

impl Filesystem {
    /// The type name blkid reports for this file system (`ext4`, `vfat`).
    pub fn blkid_type(self) -> &'static str {
        match self {
            Filesystem::Ext4 => "ext4",
            Filesystem::Vfat => "vfat",
        }
    }

    /// The program that creates it.
    fn program(self) -> &'static str {
        match self {
            Filesystem::Ext4 => "mkfs.ext4",
            Filesystem::Vfat => "mkfs.vfat",
        }
    }

    /// The Debian package that provides [`Filesystem::program`].
    fn package(self) -> &'static str {
        match self {
            Filesystem::Ext4 => "e2fsprogs",
            Filesystem::Vfat => "dosfstools",
        }
    }

    /// The longest label the file system stores, in bytes.
    fn max_label_bytes(self) -> usize {
        match self {
            Filesystem::Ext4 => 16,
            Filesystem::Vfat => 11,
        }
    }

    /// The arguments that format `image` with `label`, quietly and without questions.
    fn mkfs_args(self, label: &str, image: &Path) -> Vec<String> {
        let image = image.display().to_string();
        match self {
            Filesystem::Ext4 => ["-q", "-F", "-L", label, &image].map(String::from).to_vec(),
            Filesystem::Vfat => ["-n", label, &image].map(String::from).to_vec(),
        }
    }
}

/// The mkfs program for `filesystem`, searched on `PATH` then in the sbin directories.
fn mkfs_program(filesystem: Filesystem) -> anyhow::Result<PathBuf> {
    let name = Path::new(filesystem.program());
    find_program(name)
        .or_else(|| {
            SBIN_DIRS
                .iter()
                .find_map(|dir| find_program(&Path::new(dir).join(name)))
        })
        .with_context(|| {
            format!(
                "{} not found: install the Debian package {package} (apt-get install {package})",
                filesystem.program(),
                package = filesystem.package()
            )
        })
}

/// Creates the sparse image `path` of `size_bytes` and formats it with `filesystem` labelled
/// `label`. The label is checked first, so a bad one leaves no file behind.
pub(crate) fn create_formatted(
    path: &Path,
    size_bytes: u64,
    filesystem: Filesystem,
    label: &str,
) -> anyhow::Result<()> {
    ensure!(
        !label.is_empty() && label.len() <= filesystem.max_label_bytes(),
        "label {label:?} does not fit {}: it takes 1 to {} bytes",
        filesystem.blkid_type(),
        filesystem.max_label_bytes()
    );
    let program = mkfs_program(filesystem)?;
    create_sparse(path, size_bytes)?;
    let output = Command::new(&program)
        .args(filesystem.mkfs_args(label, path))
        .output()
        .with_context(|| format!("starting {}", program.display()))?;
    if !output.status.success() {
        bail!(
            "{} on {} failed ({}): {}",
            program.display(),
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What blkid says about `path`, as `TYPE=.. LABEL=..` (blkid is in util-linux, which
    /// every Debian system has).
    fn blkid(path: &Path) -> String {
        let output = Command::new(
            find_program(Path::new("blkid"))
                .or_else(|| find_program(Path::new("/usr/sbin/blkid")))
                .or_else(|| find_program(Path::new("/sbin/blkid")))
                .unwrap(),
        )
        .args(["-p", "-o", "export", "-s", "TYPE", "-s", "LABEL"])
        .arg(path)
        .output()
        .unwrap();
        assert!(output.status.success(), "{output:?}");
        let mut fields: Vec<String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter(|line| line.starts_with("TYPE=") || line.starts_with("LABEL="))
            .map(str::to_string)
            .collect();
        fields.sort_unstable_by(|a, b| b.cmp(a));
        fields.join(" ")
    }

    #[test]
    fn ext4_and_vfat_images_carry_their_labels() {
        let dir = tempfile::tempdir().unwrap();
        for (filesystem, label, size) in [
            (Filesystem::Ext4, "mfv-config", 16 << 20),
            (Filesystem::Vfat, "MFVSTICK", 8 << 20),
        ] {
            let path = dir.path().join(format!("{label}.img"));
            create_formatted(&path, size, filesystem, label).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
            assert_eq!(
                blkid(&path),
                format!("TYPE={} LABEL={label}", filesystem.blkid_type())
            );
        }
    }

    #[test]
    fn a_label_too_long_is_an_error_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.img");
        let error = create_formatted(&path, 8 << 20, Filesystem::Vfat, "TWELVE-CHARS")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("does not fit vfat: it takes 1 to 11 bytes"),
            "{error}"
        );
        assert!(!path.exists());
        let error = create_formatted(&path, 8 << 20, Filesystem::Ext4, "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not fit ext4"), "{error}");
    }

    #[test]
    fn mkfs_failing_shows_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.img");
        // 4 KiB is far too small for ext4: mkfs.ext4 refuses.
        let error = create_formatted(&path, 4096, Filesystem::Ext4, "tiny")
            .unwrap_err()
            .to_string();
        assert!(error.contains("mkfs.ext4 on"), "{error}");
        assert!(error.contains("failed"), "{error}");
    }

    #[test]
    fn an_existing_image_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keep.img");
        std::fs::write(&path, b"keep me").unwrap();
        let error = format!(
            "{:#}",
            create_formatted(&path, 8 << 20, Filesystem::Vfat, "KEEP").unwrap_err()
        );
        assert!(error.contains("keep.img"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }
}
