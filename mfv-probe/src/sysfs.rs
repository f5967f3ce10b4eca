//! Small readers for sysfs attribute files and links, with the path in every error.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::ProbeError;

/// Reads an attribute file and trims the trailing newline the kernel writes.
///
/// `Ok(None)` when the kernel refuses the read with `EINVAL`, which is how attributes such as
/// `carrier` and `speed` say "no value" while an interface is down.
pub(crate) fn read_attribute(path: &Path) -> Result<Option<String>, ProbeError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim_end().to_owned())),
        Err(error) => attribute_read_failure(path, error),
    }
}

/// Maps a failed attribute read: `EINVAL` means "no value", anything else is an error.
pub(crate) fn attribute_read_failure(
    path: &Path,
    error: io::Error,
) -> Result<Option<String>, ProbeError> {
    if error.kind() == io::ErrorKind::InvalidInput {
        Ok(None)
    } else {
        Err(ProbeError::ReadAttribute {
            path: path.to_owned(),
            source: error,
        })
    }
}

/// The file name the link at `path` points to (e.g. the driver name of `device/driver`),
/// `Ok(None)` when there is no such link.
pub(crate) fn link_basename(path: &Path) -> Result<Option<String>, ProbeError> {
    match fs::read_link(path) {
        Ok(target) => Ok(target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ProbeError::ReadAttribute {
            path: path.to_owned(),
            source: error,
        }),
    }
}

/// Where `path` really is, relative to the canonical sysfs root (e.g.
/// `devices/pci0000:00/0000:00:03.0/virtio2`); `Ok(None)` when `path` does not exist.
pub(crate) fn resolve_under(root: &Path, path: &Path) -> Result<Option<PathBuf>, ProbeError> {
    let canonical_root = fs::canonicalize(root).map_err(|source| ProbeError::ReadAttribute {
        path: root.to_owned(),
        source,
    })?;
    match fs::canonicalize(path) {
        Ok(target) => Ok(Some(match target.strip_prefix(&canonical_root) {
            Ok(relative) => relative.to_owned(),
            Err(_) => target,
        })),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ProbeError::ReadAttribute {
            path: path.to_owned(),
            source: error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn einval_means_no_value() {
        let result = attribute_read_failure(
            Path::new("/sys/class/net/ifb0/carrier"),
            io::Error::from_raw_os_error(22),
        );
        assert!(matches!(result, Ok(None)));
    }

    #[test]
    fn other_read_failures_name_the_path() {
        let result = attribute_read_failure(
            Path::new("/sys/class/net/eth0/carrier"),
            io::Error::from_raw_os_error(5),
        );
        let Err(error) = result else {
            panic!("EIO must be an error, got {result:?}");
        };
        assert_eq!(error.to_string(), "cannot read /sys/class/net/eth0/carrier");
    }

    #[test]
    fn link_errors_other_than_missing_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("driver");
        fs::write(&file, "not a link").unwrap();
        let error = link_basename(&file).unwrap_err();
        assert!(matches!(error, ProbeError::ReadAttribute { ref path, .. } if *path == file));
        assert_eq!(link_basename(&dir.path().join("absent")).unwrap(), None);
    }

    #[test]
    fn resolve_reports_missing_root_and_keeps_paths_outside_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing_root = dir.path().join("no-sysfs");
        let error = resolve_under(&missing_root, dir.path()).unwrap_err();
        assert!(
            matches!(error, ProbeError::ReadAttribute { ref path, .. } if *path == missing_root)
        );

        let root = dir.path().join("sys");
        fs::create_dir(&root).unwrap();
        let outside = dir.path().canonicalize().unwrap();
        assert_eq!(resolve_under(&root, dir.path()).unwrap(), Some(outside));
    }

    #[test]
    fn resolve_reports_a_link_loop() {
        let dir = tempfile::tempdir().unwrap();
        let looping = dir.path().join("device");
        std::os::unix::fs::symlink("device", &looping).unwrap();
        let error = resolve_under(dir.path(), &looping).unwrap_err();
        assert!(matches!(error, ProbeError::ReadAttribute { ref path, .. } if *path == looping));
    }
}
