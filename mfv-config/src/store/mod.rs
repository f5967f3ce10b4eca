//! The config store: where a saved configuration lives, written atomically, with the previous
//! generation kept as last-known-good.
//!
//! A store holds the configuration **text** (TOML). It knows nothing of the schema beyond a
//! [`Validator`]: text the validator refuses is never written, and a stored generation the
//! validator refuses is not used. The default validator is
//! [`schema::parse_config`](crate::schema::parse_config).
//!
//! Two implementations of [`ConfigStore`]:
//! - [`DirectoryStore`]: `mfv.toml` plus `mfv.toml.prev` in a directory of the config volume,
//!   replaced by rename so a reader always finds the old or the new file, never neither. Each
//!   file starts with a [generation header](header) carrying its length and SHA-256, so a torn
//!   or corrupt file is detected and the previous generation is used instead.
//! - [`SqliteStore`]: a table of generations in an SQLite database (WAL, `synchronous=FULL`),
//!   each saved in one transaction.
//!
//! Neither follows a symbolic link, waits on a FIFO or reads a device where its own files
//! belong: a config volume may hold anything under those names (see each module).
//!
//! Both take a [`VolumeAccess`]: the volume is switched to read-write only for the duration of
//! a write ([`RemountVolume`]); [`PlainDirectory`] does nothing, for ordinary directories.
//!
//! ```
//! use mfv_config::store::{ConfigStore, DirectoryStore, Origin, PlainDirectory};
//!
//! let dir = tempfile::tempdir()?;
//! // A validator that accepts any text: real callers keep the default (the schema).
//! let store = DirectoryStore::new(dir.path(), PlainDirectory).with_validator(|_| Ok(()));
//! assert!(store.load()?.is_none());
//! store.save("version = 1\n")?;
//! let saved = store.save("version = 1\n# second\n")?;
//! assert_eq!(saved.generation, 2);
//! let loaded = store.load()?.expect("a generation was saved");
//! assert_eq!(loaded.text, "version = 1\n# second\n");
//! assert_eq!(loaded.origin, Origin::Current);
//! assert_eq!(store.generations()?.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod directory;
pub mod header;
pub mod sqlite;
mod volume;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

pub use mfv_linux::regular_file::FileKind;

pub use directory::{
    CURRENT_FILE_NAME, DirectoryStore, PREVIOUS_FILE_NAME, Selected, select_generation,
};
pub use sqlite::{DEFAULT_RETAINED_GENERATIONS, SqliteStore};
pub use volume::{
    PlainDirectory, RecordingVolume, RemountVolume, VolumeAccess, VolumeCall, VolumeError,
};

/// Why the store refuses a name that is not a regular file where it reads one.
const READS_ONLY_REGULAR_FILES: &str = "the store reads only regular files";

/// Decides whether a configuration text may be stored or used: `Err` carries the reasons, one
/// per line.
pub type Validator = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The default validator: the text must parse as a configuration of the current schema, with
/// the same limits discovery applies to a file ([`parse_config_bytes`]: size, no NUL bytes), so
/// that whatever is saved is also found at the next boot. The size limit leaves room for the
/// [generation header](header).
///
/// [`parse_config_bytes`]: crate::schema::parse_config_bytes
pub fn schema_validator() -> Validator {
    Arc::new(|text| {
        if text.len() <= crate::schema::MAX_CONFIG_SIZE {
            fits_in_a_generation_file(text)?;
        }
        crate::schema::parse_config_bytes(text.as_bytes())
            .map(|_| ())
            .map_err(|errors| errors.to_string())
    })
}

/// Whether `text` with the store's [generation header](header) fits in
/// [`MAX_GENERATION_FILE_BYTES`](directory::MAX_GENERATION_FILE_BYTES), the most a reader of a
/// generation file reads: a text that does not is never saved, whatever the validator.
fn fits_in_a_generation_file(text: &str) -> Result<(), String> {
    let limit = directory::MAX_GENERATION_FILE_BYTES;
    let size = u64::try_from(text.len() + header::MAX_HEADER_LENGTH).unwrap_or(u64::MAX);
    if size > limit {
        return Err(format!(
            "the configuration is {} bytes; with the store's generation header it would \
             exceed the limit of {limit} bytes",
            text.len()
        ));
    }
    Ok(())
}

/// A place that keeps configuration generations.
pub trait ConfigStore: fmt::Debug + Send + Sync {
    /// The current configuration, or the last-known-good one when the current generation is
    /// unusable (then [`LoadedConfig::warnings`] says why). `Ok(None)`: nothing was ever saved.
    fn load(&self) -> Result<Option<LoadedConfig>, StoreError>;

    /// Validates `text`, then stores it atomically as the new current generation, keeping the
    /// previous one as last-known-good. Text the validator refuses changes nothing. A leading
    /// generation header line in `text` (from a file written by a [`DirectoryStore`]) is
    /// dropped: the store writes its own.
    fn save(&self, text: &str) -> Result<SavedGeneration, StoreError>;

    /// Every stored generation, newest first, each with whether it is usable.
    fn generations(&self) -> Result<Vec<GenerationInfo>, StoreError>;
}

/// Where a stored generation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file of a [`DirectoryStore`].
    File(PathBuf),
    /// A row of a [`SqliteStore`].
    Row {
        /// The database file.
        database: PathBuf,
        /// The generation number (the row id).
        generation: u64,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Row {
                database,
                generation,
            } => write!(f, "{} generation {generation}", database.display()),
        }
    }
}

/// Which generation a loaded configuration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The current (newest) generation.
    Current,
    /// An older generation, used because the newer ones are unusable.
    LastKnownGood,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Current => "current",
            Origin::LastKnownGood => "last-known-good",
        })
    }
}

/// A configuration read from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedConfig {
    /// The configuration text, without the store's generation header. The validator accepted it.
    pub text: String,
    /// The generation number; `None` for a file written by hand (no generation header).
    pub generation: Option<u64>,
    /// Current generation or last-known-good.
    pub origin: Origin,
    /// Where it was read from.
    pub location: Location,
    /// One entry for each newer generation that was unusable and skipped.
    pub warnings: Vec<StoreWarning>,
}

/// A newer generation was unusable, so an older one was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreWarning {
    /// The generation that was skipped.
    pub skipped: Location,
    /// Why it was skipped.
    pub problem: GenerationProblem,
    /// The generation used instead.
    pub used: Location,
}

impl fmt::Display for StoreWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}; using last-known-good {}",
            self.skipped, self.problem, self.used
        )
    }
}

/// Why a stored generation cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationProblem {
    /// The file does not exist.
    Missing,
    /// The name is not a regular file (a symbolic link, FIFO, device...): it is not read.
    NotRegularFile {
        /// What it is.
        kind: FileKind,
    },
    /// The file is larger than a generation file can be: it is not read.
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The largest file the store reads, [`directory::MAX_GENERATION_FILE_BYTES`].
        limit: u64,
    },
    /// Reading it failed.
    Unreadable {
        /// The operating system's message.
        message: String,
    },
    /// The content is not UTF-8.
    NotUtf8,
    /// The first line starts like a generation header but does not parse as one.
    MalformedHeader,
    /// The content is longer or shorter than the header says (a torn write).
    LengthMismatch {
        /// Bytes according to the header.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },
    /// The content's SHA-256 differs from the recorded one.
    ChecksumMismatch {
        /// Recorded SHA-256, hex.
        expected: String,
        /// SHA-256 of the content found, hex.
        actual: String,
    },
    /// The content is intact but the validator refuses it.
    Invalid {
        /// The validator's reasons, one per line.
        errors: String,
    },
}

impl fmt::Display for GenerationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenerationProblem::Missing => f.write_str("missing"),
            GenerationProblem::NotRegularFile { kind } => {
                write!(f, "{kind}; {READS_ONLY_REGULAR_FILES}")
            }
            GenerationProblem::TooLarge { size, limit } => write!(
                f,
                "too large: {size} bytes, the store reads at most {limit}"
            ),
            GenerationProblem::Unreadable { message } => write!(f, "unreadable: {message}"),
            GenerationProblem::NotUtf8 => f.write_str("corrupt: not UTF-8 text"),
            GenerationProblem::MalformedHeader => {
                f.write_str("corrupt: malformed generation header")
            }
            GenerationProblem::LengthMismatch { expected, actual } => write!(
                f,
                "corrupt: {actual} bytes where the generation header says {expected} (torn write)"
            ),
            GenerationProblem::ChecksumMismatch { expected, actual } => write!(
                f,
                "corrupt: sha256 {actual} where the generation header says {expected} \
                 (after editing by hand, delete the `# mfv-store` first line)"
            ),
            GenerationProblem::Invalid { errors } => {
                write!(
                    f,
                    "invalid config: {}",
                    errors.lines().collect::<Vec<_>>().join("; ")
                )
            }
        }
    }
}

/// One stored generation, as listed by [`ConfigStore::generations`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationInfo {
    /// Where it is.
    pub location: Location,
    /// Its generation number, when known.
    pub generation: Option<u64>,
    /// When it was written (file modification time, or the row's creation time).
    pub written_at: Option<SystemTime>,
    /// Length of the configuration text in bytes.
    pub length: u64,
    /// SHA-256 of the configuration text as found, hex.
    pub sha256: String,
    /// `Ok` when [`ConfigStore::load`] could use it.
    pub status: Result<(), GenerationProblem>,
}

/// What [`ConfigStore::save`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedGeneration {
    /// The new generation number.
    pub generation: u64,
    /// SHA-256 of the stored text, hex.
    pub sha256: String,
    /// Where it was written.
    pub location: Location,
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's directory does not exist (is the config volume mounted?).
    #[error("config store directory {} does not exist", path.display())]
    DirectoryMissing {
        /// The directory.
        path: PathBuf,
    },
    /// A name the store opens or writes through is not the kind of file it must be (a
    /// symbolic link would send the store elsewhere, a FIFO blocks it, a device reads without
    /// end); nothing was read or written through it.
    #[error("{} is {kind}; {rule}", path.display())]
    FileType {
        /// The name.
        path: PathBuf,
        /// What it is.
        kind: FileKind,
        /// What the store accepts there.
        rule: &'static str,
    },
    /// The validator refused the text; nothing was written.
    #[error("config for {} refused, nothing was written: {}", store.display(), errors.lines().collect::<Vec<_>>().join("; "))]
    InvalidConfig {
        /// The store (directory or database).
        store: PathBuf,
        /// The validator's reasons, one per line.
        errors: String,
    },
    /// Every stored generation is unusable.
    #[error("no usable config in {}: {}", store.display(), list_problems(problems))]
    NoUsableGeneration {
        /// The store (directory or database).
        store: PathBuf,
        /// Each generation tried, newest first, with why it is unusable.
        problems: Vec<(Location, GenerationProblem)>,
    },
    /// Reading a file or directory failed.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Creating or writing a file failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Flushing a file or directory to the device failed.
    #[error("cannot sync {} to disk", path.display())]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Renaming failed.
    #[error("cannot rename {} to {}", from.display(), to.display())]
    Rename {
        /// The file renamed.
        from: PathBuf,
        /// The name it should have got.
        to: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Removing a temporary file left by an interrupted write failed.
    #[error("cannot remove the leftover temporary file {}", path.display())]
    RemoveLeftover {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Taking the writer's lock failed.
    #[error("cannot lock {} for writing", path.display())]
    Lock {
        /// The locked directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: nix::errno::Errno,
    },
    /// The volume could not be made writable, so nothing was written.
    #[error("cannot write to {}", path.display())]
    Volume {
        /// The store (directory or database).
        path: PathBuf,
        /// The cause.
        #[source]
        source: VolumeError,
    },
    /// A write failed, and afterwards the volume could not be made read-only again.
    #[error("{write}; the volume stays writable: {remount}")]
    FailedAndLeftWritable {
        /// Why the write failed.
        #[source]
        write: Box<StoreError>,
        /// Why the volume could not be made read-only.
        remount: VolumeError,
    },
    /// The generation was saved, but the volume could not be made read-only again.
    #[error("config saved to {location}, but the volume stays writable")]
    SavedButLeftWritable {
        /// The saved generation.
        location: Location,
        /// The cause.
        #[source]
        source: VolumeError,
    },
    /// Writing a file kept beside the configuration failed (the volume was made read-only
    /// again).
    #[error("cannot write {} beside the configuration", path.display())]
    Beside {
        /// The file or directory written.
        path: PathBuf,
        /// What the writer said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The SQLite database refused to switch to WAL mode.
    #[error("SQLite database {} stays in journal mode {mode}, WAL is required", path.display())]
    NotWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode it reported.
        mode: String,
    },
    /// An SQLite operation failed.
    #[error("SQLite error on {}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
}

fn list_problems(problems: &[(Location, GenerationProblem)]) -> String {
    problems
        .iter()
        .map(|(location, problem)| format!("{location}: {problem}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Runs `write` between [`VolumeAccess::make_writable`] and [`VolumeAccess::make_read_only`];
/// the volume is made read-only again also when `write` fails.
pub(crate) fn with_writable_volume<T>(
    volume: &dyn VolumeAccess,
    store: &std::path::Path,
    location: impl FnOnce(&T) -> Location,
    write: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    volume
        .make_writable()
        .map_err(|source| StoreError::Volume {
            path: store.to_path_buf(),
            source,
        })?;
    let written = write();
    let restored = volume.make_read_only();
    match (written, restored) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(value), Err(source)) => Err(StoreError::SavedButLeftWritable {
            location: location(&value),
            source,
        }),
        (Err(error), Ok(())) => Err(error),
        (Err(error), Err(remount)) => Err(StoreError::FailedAndLeftWritable {
            write: Box::new(error),
            remount,
        }),
    }
}

/// Checks a stored configuration text that has no header of its own (the SQLite rows, the body
/// of a file): recorded checksum, then validator.
fn check_text(
    bytes: &[u8],
    recorded_sha256: Option<&str>,
    validator: &Validator,
) -> Result<String, GenerationProblem> {
    if let Some(expected) = recorded_sha256 {
        let actual = sha256_hex(bytes);
        if actual != expected {
            return Err(GenerationProblem::ChecksumMismatch {
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    let text = std::str::from_utf8(bytes).map_err(|_| GenerationProblem::NotUtf8)?;
    validator(text).map_err(|errors| GenerationProblem::Invalid { errors })?;
    Ok(text.to_owned())
}
