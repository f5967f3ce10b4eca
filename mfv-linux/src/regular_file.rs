//! Reading a file from a volume nobody vouches for: only a regular file, never through a
//! symbolic link, never waiting, and never more than a size limit.
//!
//! A config volume is a USB stick or a partition anyone may have written. Its `mfv.toml`, or
//! its `mfv.toml.prev`, can be a symbolic link to `/dev/zero` (a plain read never ends), a FIFO
//! (opening it waits for a writer that never comes), or a device node (opening a watchdog
//! starts it). Discovery and the config store both read through [`read_limited`], so neither
//! can be made to follow, wait or fill memory. [`FileKind::at`] says what a name is without
//! following or opening it, for the names the store writes to.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// What kind of file a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link (not followed: it could point anywhere, off the volume included).
    Symlink,
    /// A FIFO (named pipe).
    Fifo,
    /// A Unix socket.
    Socket,
    /// A character device node.
    CharDevice,
    /// A block device node.
    BlockDevice,
    /// A type the standard library does not name.
    Unknown,
}

impl FileKind {
    /// The kind of a file type as `lstat(2)` or `fstat(2)` reported it.
    pub fn of(file_type: fs::FileType) -> FileKind {
        if file_type.is_file() {
            FileKind::Regular
        } else if file_type.is_dir() {
            FileKind::Directory
        } else if file_type.is_symlink() {
            FileKind::Symlink
        } else if file_type.is_fifo() {
            FileKind::Fifo
        } else if file_type.is_socket() {
            FileKind::Socket
        } else if file_type.is_char_device() {
            FileKind::CharDevice
        } else if file_type.is_block_device() {
            FileKind::BlockDevice
        } else {
            FileKind::Unknown
        }
    }

    /// What `path` names, without following a symbolic link or opening anything; `None`
    /// when nothing has that name.
    pub fn at(path: &Path) -> io::Result<Option<FileKind>> {
        match fs::symlink_metadata(path) {
            Ok(metadata) => Ok(Some(FileKind::of(metadata.file_type()))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Unknown => "a file of unknown type",
        })
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// There is no such file.
    #[error("{} does not exist", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The name is a symbolic link, directory, device, FIFO or socket: it is not read.
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: FileKind,
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

/// Reads `dir/name`, at most `limit` bytes, if it is a regular file.
///
/// The name is looked at first (`lstat`), so a device node, FIFO or socket is never opened.
/// If the name is replaced between that look and the open, the open still neither follows a
/// symbolic link (`O_NOFOLLOW`) nor waits (`O_NONBLOCK`), and what it opened is checked again
/// (`fstat`) before a byte is read.
pub fn read_limited(dir: &Path, name: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
    let path = dir.join(name);
    let io_error = |source| ReadError::Io {
        path: path.clone(),
        source,
    };
    match FileKind::at(&path).map_err(io_error)? {
        None => return Err(ReadError::Missing { path }),
        Some(FileKind::Regular) => {}
        Some(kind) => return Err(ReadError::NotRegular { path, kind }),
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits() | OFlag::O_NONBLOCK.bits())
        .open(&path)
        .map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => ReadError::Missing { path: path.clone() },
            _ if error.raw_os_error() == Some(ELOOP) => ReadError::NotRegular {
                path: path.clone(),
                kind: FileKind::Symlink,
            },
            _ => io_error(error),
        })?;
    let metadata = file.metadata().map_err(io_error)?;
    let kind = FileKind::of(metadata.file_type());
    if kind != FileKind::Regular {
        return Err(ReadError::NotRegular { path, kind });
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

    use nix::sys::stat::{Mode, SFlag, makedev, mknod};

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
    fn every_refusal_names_the_file_and_what_it_is() {
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
            format!("{} is a symbolic link, not a regular file", path.display())
        );
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert_eq!(
            message(10),
            format!("{} is a directory, not a regular file", path.display())
        );
        fs::remove_dir(&path).unwrap();
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            message(10),
            format!("{} is a FIFO, not a regular file", path.display())
        );
    }

    /// A character device whose major number no driver registers: opening it would fail
    /// (`ENXIO`, or `EACCES` on a `nodev` mount), so only a reader that never opens it says
    /// what it is.
    #[test]
    fn a_device_node_is_refused_without_being_opened() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "mknod needs root: run the tests as root"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mfv.toml");
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(4095, 0),
        )
        .unwrap();
        let error = read_limited(dir.path(), "mfv.toml", 10).unwrap_err();
        assert!(
            matches!(
                error,
                ReadError::NotRegular {
                    kind: FileKind::CharDevice,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(FileKind::at(&path).unwrap(), Some(FileKind::CharDevice));
        assert_eq!(FileKind::at(&dir.path().join("none")).unwrap(), None);
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
