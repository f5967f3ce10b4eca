//! Reading `mfv.toml` from a mounted volume: only a regular file, never through a symbolic
//! link, and never more than a size limit.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// Why the configuration file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// There is no such file.
    #[error("{} does not exist", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file is a symbolic link, which is not followed (it would point outside the
    /// volume).
    #[error("{} is a symbolic link", path.display())]
    Symlink {
        /// The file.
        path: PathBuf,
    },
    /// The name is a directory, device, FIFO or socket.
    #[error("{} is not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than the limit.
    #[error("{} is too large ({size} bytes, limit {limit})", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (at least `limit + 1` when it grew while being read).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Opening or reading failed (e.g. an I/O error on a medium that went away).
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}

/// `ELOOP`: what open(2) with `O_NOFOLLOW` says for a symbolic link.
const ELOOP: i32 = 40;

/// Reads `dir/name`, at most `limit` bytes.
pub fn read_limited(dir: &Path, name: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
    let path = dir.join(name);
    let io_error = |source| ReadError::Io {
        path: path.clone(),
        source,
    };
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits() | OFlag::O_NONBLOCK.bits())
        .open(&path)
        .map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => ReadError::Missing { path: path.clone() },
            _ if error.raw_os_error() == Some(ELOOP) => ReadError::Symlink { path: path.clone() },
            _ => io_error(error),
        })?;
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.is_file() {
        return Err(ReadError::NotRegular { path });
    }
    if metadata.len() > limit {
        return Err(ReadError::TooLarge {
            path,
            size: metadata.len(),
            limit,
        });
    }
    let mut content = Vec::new();
    Read::take(&file, limit.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(io_error)?;
    let read = u64::try_from(content.len()).unwrap_or(u64::MAX);
    if read > limit {
        return Err(ReadError::TooLarge {
            path,
            size: read,
            limit,
        });
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn reads_a_file_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("mfv.toml"), "version = 1\n").unwrap();
        assert_eq!(
            read_limited(dir.path(), "mfv.toml", 12).unwrap(),
            b"version = 1\n"
        );
    }

    #[test]
    fn every_refusal_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfv.toml");
        let message = |limit| {
            read_limited(dir.path(), "mfv.toml", limit)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(message(10), format!("{} does not exist", path.display()));
        fs::write(&path, "x".repeat(11)).unwrap();
        assert_eq!(
            message(10),
            format!("{} is too large (11 bytes, limit 10)", path.display())
        );
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        assert_eq!(
            message(10),
            format!("{} is a symbolic link", path.display())
        );
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert_eq!(
            message(10),
            format!("{} is not a regular file", path.display())
        );
        fs::remove_dir(&path).unwrap();
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            message(10),
            format!("{} is not a regular file", path.display())
        );
    }

    #[test]
    fn unreadable_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_limited(&dir.path().join("not-a-dir-file"), "mfv.toml", 10);
        // A path through a regular file: ENOTDIR, not "missing".
        fs::write(dir.path().join("not-a-dir-file"), "").unwrap();
        let error_through_file =
            read_limited(&dir.path().join("not-a-dir-file"), "mfv.toml", 10).unwrap_err();
        assert!(matches!(error, Err(ReadError::Missing { .. })));
        let ReadError::Io { path, source } = error_through_file else {
            panic!("{error_through_file:?}");
        };
        assert_eq!(path, dir.path().join("not-a-dir-file/mfv.toml"));
        assert_eq!(source.raw_os_error(), Some(20));
    }
}
