//! The directory store: `mfv.toml` and `mfv.toml.prev` in a directory of the config volume.
//!
//! # Files
//! | name | what |
//! |---|---|
//! | `mfv.toml` | the current generation, starting with its [generation header](super::header) |
//! | `mfv.toml.prev` | the previous generation (last-known-good) |
//! | `.mfv.toml.new` | a new generation being written (temporary) |
//! | `.mfv.toml.prev.new` | the previous generation being put in place (temporary) |
//!
//! # What is read, and what is not
//! The volume may hold anything under these names. A generation file is read only when it is
//! a regular file of at most [`MAX_GENERATION_FILE_BYTES`], never through a symbolic link and
//! never by an open that could wait ([`read_limited`], the reader boot discovery uses too).
//! Anything else is an unusable generation named with what it is (`DIR/mfv.toml.prev: a FIFO;
//! the store reads only regular files`):
//! - [`load`](ConfigStore::load) reads `mfv.toml.prev` only when `mfv.toml` is unusable, so a
//!   hostile `mfv.toml.prev` never stops the use of a good `mfv.toml`. An unusable `mfv.toml`
//!   falls back to a usable `mfv.toml.prev` with a warning naming it; without one it is an
//!   error naming both files.
//! - [`save`](ConfigStore::save) replaces either name by rename and never writes through it:
//!   a hostile `mfv.toml.prev` is replaced by the current generation when that one is usable.
//! - The store's directory must be a directory, not a symbolic link to one; the writer's lock
//!   is taken on it opened with `O_NOFOLLOW`. [`DirectoryStore::write_beside`] accepts only a
//!   name that is missing, a directory or a regular file.
//!
//! # The write order, and why a reader always finds the old or the new config
//! A save takes an exclusive `flock` on the directory (one writer at a time), then:
//! 1. removes temporary files a crashed write left behind;
//! 2. writes the new generation to `.mfv.toml.new`, `fsync`s it;
//! 3. only if the current `mfv.toml` is usable (header, checksum and validator all pass):
//!    hard-links it as `.mfv.toml.prev.new` (or, where the file system has no hard links,
//!    e.g. vfat, copies its bytes there and `fsync`s the copy), renames `.mfv.toml.prev.new`
//!    over `mfv.toml.prev` and `fsync`s the directory;
//! 4. renames `.mfv.toml.new` over `mfv.toml` and `fsync`s the directory.
//!
//! Invariants, at every instant:
//! - `mfv.toml` and `mfv.toml.prev` are only ever replaced by `rename(2)`, which swaps the
//!   directory entry in one step; no file is ever written in place. So each name always
//!   refers to a complete file: `mfv.toml` to the old current until step 4 and to the new one
//!   (written and synced in step 2) after; `mfv.toml.prev` to the old previous until step 3
//!   and to the old current after.
//! - `mfv.toml` is never unlinked, so once a generation was saved a reader always finds one.
//! - A hard link shares the old current's inode; that is safe because the inode is never
//!   written again (step 4 points `mfv.toml` at a new inode).
//! - A crash anywhere leaves `mfv.toml` old or new and `mfv.toml.prev` old-previous or
//!   old-current; stray temporary files are ignored by readers and removed by the next save.
//! - A current generation that is unusable is not promoted: `mfv.toml.prev` stays the last
//!   generation known to be good.
//! - After a power cut, the `fsync`s before each rename make the renamed file's data durable
//!   before its name is; the directory `fsync`s make the renames durable. A file system that
//!   cannot rename atomically across a power cut (vfat) may still tear `mfv.toml`: the header
//!   detects it and [`load`](ConfigStore::load) falls back to `mfv.toml.prev`, saying so.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mfv_linux::atomic_file::{WriteFailure, WriteStep, write_new_synced};
use mfv_linux::regular_file::{ReadError, read_limited};
use nix::fcntl::{Flock, FlockArg, OFlag};

use super::header::{self, Header};
use super::{
    ConfigStore, FileKind, GenerationInfo, GenerationProblem, LoadedConfig, Location, Origin,
    SavedGeneration, StoreError, StoreWarning, Validator, VolumeAccess, fits_in_a_generation_file,
    schema_validator, sha256_hex, with_writable_volume,
};

/// The current generation's file name.
pub const CURRENT_FILE_NAME: &str = "mfv.toml";
/// The previous (last-known-good) generation's file name.
pub const PREVIOUS_FILE_NAME: &str = "mfv.toml.prev";
const NEW_TEMP_NAME: &str = ".mfv.toml.new";
/// The largest generation file the store reads (header line included): the schema's limit on
/// a configuration file, [`MAX_CONFIG_SIZE`](crate::schema::MAX_CONFIG_SIZE), so whatever the
/// store saves is also what boot discovery reads by default.
pub const MAX_GENERATION_FILE_BYTES: u64 = crate::schema::MAX_CONFIG_SIZE as u64;
const PREVIOUS_TEMP_NAME: &str = ".mfv.toml.prev.new";

/// A [`ConfigStore`] in a directory: see the [module documentation](self) for the files and
/// the write order.
pub struct DirectoryStore {
    dir: PathBuf,
    volume: Box<dyn VolumeAccess>,
    validator: Validator,
}

impl std::fmt::Debug for DirectoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryStore")
            .field("dir", &self.dir)
            .field("volume", &self.volume)
            .finish_non_exhaustive()
    }
}

/// A generation file as found.
struct Examined {
    path: PathBuf,
    /// The file's bytes; `None` when it is missing or unreadable.
    bytes: Option<Vec<u8>>,
    status: Result<Usable, GenerationProblem>,
}

struct Usable {
    generation: Option<u64>,
    text: String,
}

impl Examined {
    /// The generation number in a header that parses, even when the body is corrupt.
    fn header_generation(&self) -> Option<u64> {
        let bytes = self.bytes.as_deref()?;
        header::split(bytes).ok()?.0.map(|header| header.generation)
    }
}

impl DirectoryStore {
    /// A store in `dir`, reached through `volume`, validating with the configuration schema.
    pub fn new(dir: impl Into<PathBuf>, volume: impl VolumeAccess + 'static) -> Self {
        DirectoryStore {
            dir: dir.into(),
            volume: Box::new(volume),
            validator: schema_validator(),
        }
    }

    /// Replaces the validator (for payloads other than the configuration schema).
    pub fn with_validator(
        mut self,
        validator: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validator = std::sync::Arc::new(validator);
        self
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `write` on `<dir>/<name>` with the volume writable, then makes it read-only
    /// again (also when `write` fails): for files the host keeps beside its configuration,
    /// such as the exported VM definitions. `write` is responsible for writing atomically.
    ///
    /// `<dir>/<name>` must be missing, a directory or a regular file: a symbolic link there
    /// would send the writes off the volume, so anything else is refused before the volume is
    /// made writable.
    pub fn write_beside<T>(
        &self,
        name: &str,
        write: impl FnOnce(&Path) -> Result<T, Box<dyn std::error::Error + Send + Sync>>,
    ) -> Result<T, StoreError> {
        self.check_dir()?;
        let path = self.dir.join(name);
        match FileKind::at(&path) {
            Ok(None | Some(FileKind::Directory | FileKind::Regular)) => {}
            Ok(Some(kind)) => {
                return Err(StoreError::FileType {
                    path,
                    kind,
                    rule: "the store writes beside the configuration only into directories \
                           and regular files",
                });
            }
            Err(source) => return Err(StoreError::Read { path, source }),
        }
        with_writable_volume(
            self.volume.as_ref(),
            &self.dir,
            |_: &T| Location::File(path.clone()),
            || {
                write(&path).map_err(|source| StoreError::Beside {
                    path: path.clone(),
                    source,
                })
            },
        )
    }

    /// The current generation's file.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(CURRENT_FILE_NAME)
    }

    /// The previous (last-known-good) generation's file.
    pub fn previous_path(&self) -> PathBuf {
        self.dir.join(PREVIOUS_FILE_NAME)
    }

    /// The store's directory must be a directory itself: through a symbolic link, every read,
    /// write and the lock would be somewhere else.
    fn check_dir(&self) -> Result<(), StoreError> {
        match FileKind::at(&self.dir) {
            Ok(Some(FileKind::Directory)) => Ok(()),
            Ok(Some(FileKind::Symlink)) => Err(StoreError::FileType {
                path: self.dir.clone(),
                kind: FileKind::Symlink,
                rule: "the store's directory must be a directory itself, not a link to one",
            }),
            Ok(Some(_)) => Err(StoreError::Read {
                path: self.dir.clone(),
                source: ErrorKind::NotADirectory.into(),
            }),
            Ok(None) => Err(StoreError::DirectoryMissing {
                path: self.dir.clone(),
            }),
            Err(source) => Err(StoreError::Read {
                path: self.dir.clone(),
                source,
            }),
        }
    }

    /// Reads the generation file `name`: a regular file of at most
    /// [`MAX_GENERATION_FILE_BYTES`], anything else is a [`GenerationProblem`] and not read.
    fn examine(&self, name: &str) -> Examined {
        let path = self.dir.join(name);
        let bytes = match read_limited(&self.dir, name, MAX_GENERATION_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(error) => {
                let problem = match error {
                    ReadError::Missing { .. } => GenerationProblem::Missing,
                    ReadError::NotRegular { kind, .. } => {
                        GenerationProblem::NotRegularFile { kind }
                    }
                    ReadError::TooLarge { size, limit, .. } => {
                        GenerationProblem::TooLarge { size, limit }
                    }
                    ReadError::Io { source, .. } => GenerationProblem::Unreadable {
                        message: source.to_string(),
                    },
                };
                return Examined {
                    path,
                    bytes: None,
                    status: Err(problem),
                };
            }
        };
        let status = header::verify(&bytes).and_then(|(generation, body)| {
            let text = super::check_text(body, None, &self.validator)?;
            Ok(Usable { generation, text })
        });
        Examined {
            path,
            bytes: Some(bytes),
            status,
        }
    }

    /// Steps 1 to 4 of the write order, under the directory lock.
    fn write_generation(&self, text: &str) -> Result<SavedGeneration, StoreError> {
        // O_NOFOLLOW: the lock is taken on the store's directory itself, never through a link.
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_DIRECTORY.bits() | OFlag::O_NOFOLLOW.bits())
            .open(&self.dir)
            .map_err(|source| StoreError::Read {
                path: self.dir.clone(),
                source,
            })?;
        let dir =
            Flock::lock(dir, FlockArg::LockExclusive).map_err(|(_, source)| StoreError::Lock {
                path: self.dir.clone(),
                source,
            })?;
        let new_temp = self.dir.join(NEW_TEMP_NAME);
        let previous_temp = self.dir.join(PREVIOUS_TEMP_NAME);
        for leftover in [&new_temp, &previous_temp] {
            remove_if_present(leftover).map_err(|source| StoreError::RemoveLeftover {
                path: leftover.clone(),
                source,
            })?;
        }

        let current = self.examine(CURRENT_FILE_NAME);
        let previous = self.examine(PREVIOUS_FILE_NAME);
        let generation = current
            .header_generation()
            .max(previous.header_generation())
            .unwrap_or(0)
            .saturating_add(1);
        let header = Header::for_body(generation, text.as_bytes());

        let written = self.replace_files(&dir, &header, text, &current, &new_temp, &previous_temp);
        if written.is_err() {
            // Best effort: a temporary file that cannot be removed now is removed by the next
            // save, and readers never look at it.
            let _ = fs::remove_file(&new_temp);
            let _ = fs::remove_file(&previous_temp);
        }
        written?;
        Ok(SavedGeneration {
            generation,
            sha256: header.sha256,
            location: Location::File(self.current_path()),
        })
    }

    fn replace_files(
        &self,
        dir: &File,
        header: &Header,
        text: &str,
        current: &Examined,
        new_temp: &Path,
        previous_temp: &Path,
    ) -> Result<(), StoreError> {
        let mut content = header.to_line().into_bytes();
        content.extend_from_slice(text.as_bytes());
        write_synced(new_temp, &content)?;

        if let (Ok(_), Some(bytes)) = (&current.status, &current.bytes) {
            if fs::hard_link(&current.path, previous_temp).is_err() {
                write_synced(previous_temp, bytes)?;
            }
            rename(previous_temp, &self.previous_path())?;
            sync_dir(dir, &self.dir)?;
        }

        rename(new_temp, &current.path)?;
        sync_dir(dir, &self.dir)
    }

    fn info(&self, examined: &Examined) -> GenerationInfo {
        let (length, sha256) = match examined.bytes.as_deref() {
            Some(bytes) => {
                let body = header::split(bytes).map_or(bytes, |(_, body)| body);
                (body.len() as u64, sha256_hex(body))
            }
            None => (0, String::new()),
        };
        GenerationInfo {
            location: Location::File(examined.path.clone()),
            generation: examined.header_generation(),
            written_at: fs::symlink_metadata(&examined.path)
                .and_then(|metadata| metadata.modified())
                .ok(),
            length,
            sha256,
            status: examined.status.as_ref().map(|_| ()).map_err(Clone::clone),
        }
    }
}

impl ConfigStore for DirectoryStore {
    fn load(&self) -> Result<Option<LoadedConfig>, StoreError> {
        self.check_dir()?;
        let current_path = self.current_path();
        let previous_path = self.previous_path();
        let selected = select_generation(
            self.examine(CURRENT_FILE_NAME).status,
            || self.examine(PREVIOUS_FILE_NAME).status,
            |problem| *problem == GenerationProblem::Missing,
        );
        let loaded = |usable: Usable, origin, location, warnings| LoadedConfig {
            text: usable.text,
            generation: usable.generation,
            origin,
            location,
            warnings,
        };
        match selected {
            Selected::Current(usable) => Ok(Some(loaded(
                usable,
                Origin::Current,
                Location::File(current_path),
                Vec::new(),
            ))),
            Selected::LastKnownGood { used, skipped } => {
                let location = Location::File(previous_path);
                let warning = StoreWarning {
                    skipped: Location::File(current_path),
                    problem: skipped,
                    used: location.clone(),
                };
                Ok(Some(loaded(
                    used,
                    Origin::LastKnownGood,
                    location,
                    vec![warning],
                )))
            }
            Selected::NeverSaved => Ok(None),
            Selected::NoUsable { current, previous } => Err(StoreError::NoUsableGeneration {
                store: self.dir.clone(),
                problems: vec![
                    (Location::File(current_path), current),
                    (Location::File(previous_path), previous),
                ],
            }),
        }
    }

    fn save(&self, text: &str) -> Result<SavedGeneration, StoreError> {
        let text = header::strip(text);
        (self.validator)(text)
            .and_then(|()| fits_in_a_generation_file(text))
            .map_err(|errors| StoreError::InvalidConfig {
                store: self.dir.clone(),
                errors,
            })?;
        self.check_dir()?;
        with_writable_volume(
            self.volume.as_ref(),
            &self.dir,
            |saved: &SavedGeneration| saved.location.clone(),
            || self.write_generation(text),
        )
    }

    fn generations(&self) -> Result<Vec<GenerationInfo>, StoreError> {
        self.check_dir()?;
        Ok([CURRENT_FILE_NAME, PREVIOUS_FILE_NAME]
            .into_iter()
            .map(|name| self.examine(name))
            .filter(|examined| examined.status.as_ref().err() != Some(&GenerationProblem::Missing))
            .map(|examined| self.info(&examined))
            .collect())
    }
}

/// Which of the two generation files a reader uses: what [`select_generation`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected<T, P> {
    /// The current file (`mfv.toml`) is usable.
    Current(T),
    /// The current file is not usable (missing, unreadable, torn, corrupt or invalid) and the
    /// previous one (`mfv.toml.prev`) is.
    LastKnownGood {
        /// The previous generation.
        used: T,
        /// Why the current one was skipped.
        skipped: P,
    },
    /// Neither file exists: nothing was ever saved.
    NeverSaved,
    /// Neither file is usable, and at least one of them exists.
    NoUsable {
        /// Why the current one is unusable.
        current: P,
        /// Why the previous one is unusable.
        previous: P,
    },
}

/// The rule [`DirectoryStore::load`] follows, for any reader of the two files (boot
/// discovery reads them from a read-only volume with its own size limits): the current
/// generation when it is usable; otherwise the previous one, which is read (`previous` is
/// called) only then. `is_missing` tells a file that does not exist from one that is unusable.
pub fn select_generation<T, P>(
    current: Result<T, P>,
    previous: impl FnOnce() -> Result<T, P>,
    is_missing: impl Fn(&P) -> bool,
) -> Selected<T, P> {
    let current = match current {
        Ok(usable) => return Selected::Current(usable),
        Err(problem) => problem,
    };
    match previous() {
        Ok(used) => Selected::LastKnownGood {
            used,
            skipped: current,
        },
        Err(previous) if is_missing(&current) && is_missing(&previous) => Selected::NeverSaved,
        Err(previous) => Selected::NoUsable { current, previous },
    }
}

/// Removes `path` if it exists. Looks first: on a read-only file system `unlink` fails with
/// `EROFS` even for a name that does not exist, and that must surface as the write failure.
fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
        Ok(_) => {}
    }
    match fs::remove_file(path) {
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        result => result,
    }
}

/// Creates `path` (which must not exist), writes `content` and syncs it.
fn write_synced(path: &Path, content: &[u8]) -> Result<(), StoreError> {
    write_new_synced(path, content, 0o600).map_err(|WriteFailure { step, source }| {
        let path = path.to_path_buf();
        match step {
            WriteStep::SyncFile | WriteStep::SyncDir => StoreError::Sync { path, source },
            WriteStep::CreateTemp | WriteStep::Write | WriteStep::Rename => {
                StoreError::Write { path, source }
            }
        }
    })
}

fn rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::rename(from, to).map_err(|source| StoreError::Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    })
}

fn sync_dir(dir: &File, path: &Path) -> Result<(), StoreError> {
    dir.sync_all().map_err(|source| StoreError::Sync {
        path: path.to_path_buf(),
        source,
    })
}
