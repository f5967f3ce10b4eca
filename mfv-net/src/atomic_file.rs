//! Replacing a file atomically: a reader sees the old contents or the new, never a mix, and
//! after a power cut the file is the old or the new one.

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

impl fmt::Display for WriteStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteStep::CreateTemp => "creating the temporary file",
            WriteStep::Write => "writing",
            WriteStep::SyncFile => "syncing the file",
            WriteStep::Rename => "renaming into place",
            WriteStep::SyncDir => "syncing the directory",
        })
    }
}

/// Distinguishes temporary files of concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `contents` (file mode `mode`): temporary file in the same directory,
/// write, fsync, rename over `path`, fsync the directory. A symlink at `path` is replaced by
/// the file, not followed. On failure the temporary file is removed and `path` is unchanged
/// (unless only the final directory sync failed).
pub(crate) fn write_atomically(
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<(), (WriteStep, io::Error)> {
    let file_name = path.file_name().ok_or_else(|| {
        (
            WriteStep::CreateTemp,
            io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        )
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

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp_path)
        .map_err(|error| (WriteStep::CreateTemp, error))?;
    // The mode given to open() is narrowed by the umask; set it exactly.
    let written = file
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|error| (WriteStep::CreateTemp, error))
        .and_then(|()| fill_and_rename(&mut file, contents, &temp_path, path));
    drop(file);
    if let Err(failure) = written {
        remove_temp(&temp_path);
        return Err(failure);
    }
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| (WriteStep::SyncDir, error))
}

/// The directory `path` is in; `.` for a bare file name.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn fill_and_rename(
    file: &mut File,
    contents: &[u8],
    temp_path: &Path,
    path: &Path,
) -> Result<(), (WriteStep, io::Error)> {
    file.write_all(contents)
        .map_err(|error| (WriteStep::Write, error))?;
    file.sync_all()
        .map_err(|error| (WriteStep::SyncFile, error))?;
    fs::rename(temp_path, path).map_err(|error| (WriteStep::Rename, error))
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
            let (step, error) = write_atomically(Path::new(path), b"", 0o644).unwrap_err();
            assert_eq!(step, WriteStep::CreateTemp);
            assert_eq!(error.to_string(), "the path has no file name");
        }
    }
}
