//! The SQLite store: configuration generations as rows of one table.
//!
//! ```sql
//! CREATE TABLE generations (
//!     id INTEGER PRIMARY KEY AUTOINCREMENT,  -- the generation number, never reused
//!     created_at INTEGER NOT NULL,           -- seconds since the Unix epoch
//!     text BLOB NOT NULL,                    -- the configuration text
//!     sha256 TEXT NOT NULL                   -- SHA-256 of text, lower-case hex
//! );
//! ```
//!
//! The database runs in WAL mode with `synchronous=FULL`: a committed save survives a power
//! cut, an interrupted one leaves no trace. A save is one `BEGIN IMMEDIATE` transaction that
//! inserts the new row and prunes old ones, keeping the newest
//! [`retained generations`](SqliteStore::with_retained_generations) and always the newest
//! usable one before the new row (the last-known-good). The connection is closed after every
//! operation, so the volume can be made read-only again and the database file holds every
//! committed generation (the last connection to close checkpoints the WAL into it).
//!
//! Before it closes, a save checkpoints the WAL and truncates it to zero bytes, whether it
//! committed or failed. Deleting the WAL at close is not enough to give its space back: a child
//! forked by another thread of the host at that moment holds the file open, and keeps its
//! blocks, until it execs. A save that failed on a full volume (`SQLITE_FULL`) would otherwise
//! leave the volume full, and the next read or save would find no room for SQLite's 32 KiB WAL
//! index (`SQLITE_IOERR_SHMSIZE`). Truncated, the file keeps no blocks whoever holds it open,
//! and the next save succeeds as soon as there is room.
//!
//! The database and the files SQLite keeps beside it (`-wal`, `-shm`, `-journal`) must each be
//! missing or a regular file, checked before every open: SQLite opens them by name and would
//! follow a symbolic link off the volume, wait on a FIFO or read a device; the database is
//! also opened with `SQLITE_OPEN_NOFOLLOW`. Anything else is refused naming the file and what
//! it is, before the volume is made writable.
//!
//! Reading opens the database read-only. On a read-only file system the database is opened as
//! immutable (SQLite cannot create its WAL index there); a WAL left by a writer that crashed is
//! then ignored and the generation before it is read, until the next save recovers it. On a
//! writable volume with no free block, reading fails like saving: SQLite cannot create the WAL
//! index there.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::statvfs::{FsFlags, statvfs};
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use super::{
    ConfigStore, FileKind, GenerationInfo, GenerationProblem, LoadedConfig, Location, Origin,
    SavedGeneration, StoreError, StoreWarning, Validator, VolumeAccess, check_text,
    schema_validator, sha256_hex, with_writable_volume,
};

/// How many generations a [`SqliteStore`] keeps unless told otherwise.
pub const DEFAULT_RETAINED_GENERATIONS: usize = 10;

/// What SQLite appends to the database's name for the files it keeps beside it.
const COMPANION_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// How long a save waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS generations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    text BLOB NOT NULL,
    sha256 TEXT NOT NULL
)";

/// A [`ConfigStore`] in an SQLite database file: see the [module documentation](self).
pub struct SqliteStore {
    path: PathBuf,
    volume: Box<dyn VolumeAccess>,
    validator: Validator,
    retained: usize,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("volume", &self.volume)
            .field("retained", &self.retained)
            .finish_non_exhaustive()
    }
}

/// One row as read.
struct Row {
    /// The row id: positive, as AUTOINCREMENT hands them out.
    id: i64,
    created_at: i64,
    text: Vec<u8>,
    sha256: String,
}

impl SqliteStore {
    /// A store in the database file `path` (created by the first save), reached through
    /// `volume`, validating with the configuration schema.
    pub fn new(path: impl Into<PathBuf>, volume: impl VolumeAccess + 'static) -> Self {
        SqliteStore {
            path: path.into(),
            volume: Box::new(volume),
            validator: schema_validator(),
            retained: DEFAULT_RETAINED_GENERATIONS,
        }
    }

    /// Replaces the validator (for payloads other than the configuration schema).
    pub fn with_validator(
        mut self,
        validator: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validator = Arc::new(validator);
        self
    }

    /// Keeps the newest `count` generations (at least 2: the current and the previous).
    pub fn with_retained_generations(mut self, count: usize) -> Self {
        self.retained = count.max(2);
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn location(&self, id: i64) -> Location {
        Location::Row {
            database: self.path.clone(),
            generation: generation_number(id),
        }
    }

    fn sqlite_error(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn directory(&self) -> &Path {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    }

    fn check_dir(&self) -> Result<(), StoreError> {
        let dir = self.directory();
        if dir.is_dir() {
            Ok(())
        } else {
            Err(StoreError::DirectoryMissing {
                path: dir.to_path_buf(),
            })
        }
    }

    /// Whether the database exists, after checking that it and the files SQLite keeps beside
    /// it are each missing or a regular file.
    fn check_files(&self) -> Result<bool, StoreError> {
        let companions = COMPANION_SUFFIXES.iter().map(|suffix| {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        });
        let mut database_exists = false;
        for path in std::iter::once(self.path.clone()).chain(companions) {
            match FileKind::at(&path) {
                Ok(None) => {}
                Ok(Some(FileKind::Regular)) => database_exists |= path == self.path,
                Ok(Some(kind)) => {
                    return Err(StoreError::FileType {
                        path,
                        kind,
                        rule: "the store opens only regular files",
                    });
                }
                Err(source) => return Err(StoreError::Read { path, source }),
            }
        }
        Ok(database_exists)
    }

    /// Every row, newest first; empty when the database does not exist yet.
    fn read_rows(&self) -> Result<Vec<Row>, StoreError> {
        self.check_dir()?;
        if !self.check_files()? {
            return Ok(Vec::new());
        }
        let connection = self.open_read_only()?;
        let table_exists: bool = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'generations'",
                [],
                |row| row.get(0),
            )
            .map_err(self.sqlite_error())?;
        if !table_exists {
            return Ok(Vec::new());
        }
        select_rows(&connection).map_err(self.sqlite_error())
    }

    fn open_read_only(&self) -> Result<Connection, StoreError> {
        let read_only_media = statvfs(self.directory())
            .map(|stat| stat.flags().contains(FsFlags::ST_RDONLY))
            .unwrap_or(false);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_URI;
        let uri = format!(
            "file:{}{}",
            uri_path(&self.path),
            if read_only_media { "?immutable=1" } else { "" }
        );
        Connection::open_with_flags(uri, flags).map_err(self.sqlite_error())
    }

    fn row_status(&self, row: &Row) -> Result<String, GenerationProblem> {
        check_text(&row.text, Some(&row.sha256), &self.validator)
    }

    fn write_generation(&self, text: &str) -> Result<SavedGeneration, StoreError> {
        let error = self.sqlite_error();
        let mut connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(&error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(&error)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(&error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal {
                path: self.path.clone(),
                mode,
            });
        }
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(&error)?;
        let inserted = self.insert_generation(&mut connection, text);
        truncate_wal(&connection);
        let (id, sha256) = inserted?;
        connection.close().map_err(|(_, source)| error(source))?;
        Ok(SavedGeneration {
            generation: generation_number(id),
            sha256,
            location: self.location(id),
        })
    }

    /// Inserts `text` as a new generation and prunes old ones, in one transaction: returns the
    /// row id and the SHA-256 of the text.
    fn insert_generation(
        &self,
        connection: &mut Connection,
        text: &str,
    ) -> Result<(i64, String), StoreError> {
        let error = self.sqlite_error();
        connection.execute_batch(CREATE_TABLE).map_err(&error)?;
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&error)?;
        let last_known_good = select_rows(&transaction)
            .map_err(&error)?
            .into_iter()
            .find(|row| self.row_status(row).is_ok())
            .map(|row| row.id);
        let sha256 = sha256_hex(text.as_bytes());
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            });
        transaction
            .execute(
                "INSERT INTO generations (created_at, text, sha256) VALUES (?1, ?2, ?3)",
                params![created_at, text.as_bytes(), sha256],
            )
            .map_err(&error)?;
        let id = transaction.last_insert_rowid();
        let oldest_by_count: Option<i64> = transaction
            .query_row(
                "SELECT id FROM generations ORDER BY id DESC LIMIT 1 OFFSET ?1",
                params![i64::try_from(self.retained - 1).unwrap_or(i64::MAX)],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })
            .map_err(&error)?;
        if let Some(oldest_by_count) = oldest_by_count {
            let keep_from =
                last_known_good.map_or(oldest_by_count, |good| good.min(oldest_by_count));
            transaction
                .execute("DELETE FROM generations WHERE id < ?1", params![keep_from])
                .map_err(&error)?;
        }
        transaction.commit().map_err(&error)?;
        Ok((id, sha256))
    }
}

/// Checkpoints the WAL into the database and truncates it to zero bytes, after a save that
/// committed and after one that failed alike, so its space is given back even while another
/// process holds it open (see the [module documentation](self)).
///
/// Best effort, without waiting: when another connection still uses the WAL the checkpoint
/// reports busy at once and the WAL stays (closing would not delete it either), and when the
/// checkpoint fails the close retries it as before. A committed save is durable in the WAL
/// either way and a failed one committed nothing, so neither changes what the save returns.
fn truncate_wal(connection: &Connection) {
    // Results deliberately ignored, see above: the row only says (busy, frames, checkpointed).
    if connection.busy_timeout(Duration::ZERO).is_ok() {
        let _ = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

/// A row id as a generation number (row ids are positive).
fn generation_number(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

fn select_rows(connection: &Connection) -> rusqlite::Result<Vec<Row>> {
    let mut statement = connection.prepare(
        "SELECT id, created_at, CAST(text AS BLOB), sha256 FROM generations ORDER BY id DESC",
    )?;
    statement
        .query_map([], |row| {
            Ok(Row {
                id: row.get(0)?,
                created_at: row.get(1)?,
                text: row.get(2)?,
                sha256: row.get(3)?,
            })
        })?
        .collect()
}

/// `path` for an SQLite `file:` URI: every byte but unreserved characters and `/` escaped.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|&byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

impl ConfigStore for SqliteStore {
    fn load(&self) -> Result<Option<LoadedConfig>, StoreError> {
        let rows = self.read_rows()?;
        let mut skipped = Vec::new();
        for row in rows {
            match self.row_status(&row) {
                Ok(text) => {
                    let used = self.location(row.id);
                    let warnings = skipped
                        .into_iter()
                        .map(|(skipped, problem)| StoreWarning {
                            skipped,
                            problem,
                            used: used.clone(),
                        })
                        .collect::<Vec<_>>();
                    return Ok(Some(LoadedConfig {
                        text,
                        generation: Some(generation_number(row.id)),
                        origin: if warnings.is_empty() {
                            Origin::Current
                        } else {
                            Origin::LastKnownGood
                        },
                        location: used,
                        warnings,
                    }));
                }
                Err(problem) => skipped.push((self.location(row.id), problem)),
            }
        }
        if skipped.is_empty() {
            Ok(None)
        } else {
            Err(StoreError::NoUsableGeneration {
                store: self.path.clone(),
                problems: skipped,
            })
        }
    }

    fn save(&self, text: &str) -> Result<SavedGeneration, StoreError> {
        let text = super::header::strip(text);
        (self.validator)(text).map_err(|errors| StoreError::InvalidConfig {
            store: self.path.clone(),
            errors,
        })?;
        self.check_dir()?;
        self.check_files()?;
        with_writable_volume(
            self.volume.as_ref(),
            &self.path,
            |saved: &SavedGeneration| saved.location.clone(),
            || self.write_generation(text),
        )
    }

    fn generations(&self) -> Result<Vec<GenerationInfo>, StoreError> {
        Ok(self
            .read_rows()?
            .into_iter()
            .map(|row| GenerationInfo {
                location: self.location(row.id),
                generation: Some(generation_number(row.id)),
                written_at: u64::try_from(row.created_at)
                    .ok()
                    .map(|seconds| UNIX_EPOCH + Duration::from_secs(seconds)),
                length: row.text.len() as u64,
                sha256: sha256_hex(&row.text),
                status: self.row_status(&row).map(|_| ()),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_path_escapes_everything_special() {
        assert_eq!(uri_path(Path::new("/a/b-c_d.db")), "/a/b-c_d.db");
        assert_eq!(uri_path(Path::new("/a b/x?y#z%")), "/a%20b/x%3Fy%23z%25");
    }
}
