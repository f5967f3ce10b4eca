//! Replacing a file atomically: a reader sees the old contents or the new, never a mix, and
//! after a power cut the file is the old or the new one.
//!
//! [`replace_file`] is the whole sequence (temporary file in the same directory, write, fsync,
//! rename, fsync of the directory). A caller that replaces several files as one transaction
//! (the config store keeps two generations) uses its steps, [`write_new_synced`] and
//! [`sync_directory`], instead.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The step of an atomic file write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// Creating the temporary file next to the target.
    CreateTemp,
    /// Writing the contents into the temporary file.
    Write,
    /// Flushing the temporary file to disk (`fsync`).
    SyncFile,
    /// Renaming the temporary file over the target.
    Rename,
    /// Flushing the directory so the rename survives a power cut.
    SyncDir,
}

impl WriteStep {
    /// What the step does, as a phrase (`creating the temporary file`).
    pub fn as_str(self) -> &'static str {
        match self {
            WriteStep::CreateTemp => "creating the temporary file",
            WriteStep::Write => "writing",
            WriteStep::SyncFile => "syncing the file",
            WriteStep::Rename => "renaming into place",
            WriteStep::SyncDir => "syncing the directory",
        }
    }
}

impl fmt::Display for WriteStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed atomic write: the step that failed and what the system said. The caller knows
/// the path and names it in its own error.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed")]
pub struct WriteFailure {
    /// The step that failed.
    pub step: WriteStep,
    /// The cause.
    #[source]
    pub source: io::Error,
}

impl WriteFailure {
    fn at(step: WriteStep) -> impl FnOnce(io::Error) -> WriteFailure {
        move |source| WriteFailure { step, source }
    }
}

/// Distinguishes temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `contents` (file mode `mode`): temporary file in the same directory,
/// write, fsync, rename over `path`, fsync the directory. A symlink at `path` is replaced by
/// the file, not followed. On failure the temporary file is removed and `path` is unchanged
/// (unless only the final directory sync failed).
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), WriteFailure> {
    let file_name = path.file_name().ok_or_else(|| WriteFailure {
        step: WriteStep::CreateTemp,
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
    })?;
    let dir = directory_of(path);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let temp_path = dir.join(temp_name);

    let written = write_new_synced(&temp_path, contents, mode)
        .and_then(|()| fs::rename(&temp_path, path).map_err(WriteFailure::at(WriteStep::Rename)));
    if let Err(failure) = written {
        remove_temp(&temp_path);
        return Err(failure);
    }
    sync_directory(dir)
}

/// Creates `path`, which must not exist, with exactly `mode` (the umask does not narrow it),
/// writes `contents` and flushes them to disk. On failure the partly written file is left for
/// the caller to remove.
pub fn write_new_synced(path: &Path, contents: &[u8], mode: u32) -> Result<(), WriteFailure> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(WriteFailure::at(WriteStep::CreateTemp))?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(WriteFailure::at(WriteStep::CreateTemp))?;
    file.write_all(contents)
        .map_err(WriteFailure::at(WriteStep::Write))?;
    file.sync_all()
        .map_err(WriteFailure::at(WriteStep::SyncFile))
}

/// Flushes the directory `dir` to disk, so that renames and new names in it survive a power
/// cut.
pub fn sync_directory(dir: &Path) -> Result<(), WriteFailure> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(WriteFailure::at(WriteStep::SyncDir))
}

/// The directory `path` is in; `.` for a bare file name.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Removes a temporary file after a failed write. The write's own error is what the caller
/// reports; a leftover temporary file is harmless, so a failure here is not reported.
fn remove_temp(temp_path: &Path) {
    let _ignored = fs::remove_file(temp_path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(directory_of(Path::new("resolv.conf")), Path::new("."));
        assert_eq!(directory_of(Path::new("etc/resolv.conf")), Path::new("etc"));
        assert_eq!(directory_of(Path::new("/resolv.conf")), Path::new("/"));
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        for path in ["/", ".", ".."] {
            let failure = replace_file(Path::new(path), b"", 0o644).unwrap_err();
            assert_eq!(failure.step, WriteStep::CreateTemp);
            assert_eq!(failure.source.to_string(), "the path has no file name");
        }
    }

    #[test]
    fn a_file_is_replaced_with_exactly_its_mode_and_no_temporary_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        fs::write(&path, "old").unwrap();
        replace_file(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["resolv.conf"]);
    }

    #[test]
    fn a_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "kept").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        replace_file(&link, b"new", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "kept");
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
    }

    #[test]
    fn a_missing_directory_fails_at_the_temporary_file_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent/file");
        let failure = replace_file(&path, b"x", 0o644).unwrap_err();
        assert_eq!(failure.step, WriteStep::CreateTemp);
        assert_eq!(failure.source.kind(), io::ErrorKind::NotFound);
        assert_eq!(failure.to_string(), "creating the temporary file failed");
    }

    #[test]
    fn a_new_file_must_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        fs::write(&path, "there").unwrap();
        let failure = write_new_synced(&path, b"x", 0o600).unwrap_err();
        assert_eq!(failure.step, WriteStep::CreateTemp);
        assert_eq!(failure.source.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&path).unwrap(), "there");
    }

    #[test]
    fn syncing_a_missing_directory_names_the_step() {
        let failure = sync_directory(Path::new("/nonexistent/dir")).unwrap_err();
        assert_eq!(failure.step, WriteStep::SyncDir);
    }
}
