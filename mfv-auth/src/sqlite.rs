//! The SQLite database: opening it (WAL, foreign keys, busy timeout, mode 0600), versioned
//! schema migrations, and running queries off the async runtime.
//!
//! One database file holds the state that is always local, whatever the user backend
//! (sessions, API tokens, TOTP secrets and recovery codes, throttle counters, the audit log),
//! and the `users` table of the SQLite user backend.
//!
//! Concurrency: one connection behind a mutex; every query runs on tokio's blocking pool
//! ([`SqliteState::run`]), so the runtime's threads never wait on disk or on the lock. Auth
//! queries are short (one indexed row), and one connection keeps writes simple: no
//! `SQLITE_BUSY` between our own connections. `busy_timeout` covers other processes (the CLI
//! opening the same file while the server runs).
//!
//! Durability: `synchronous=FULL`, so a revoked session or a changed password stays so after
//! a power cut.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one entry per version: entry `i` takes the database from version `i` to
/// `i + 1` (`PRAGMA user_version`). Never edit a released entry; append a new one.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "
    CREATE TABLE users (
        username      TEXT PRIMARY KEY NOT NULL,
        display_name  TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE sessions (
        id              INTEGER PRIMARY KEY,
        token_hash      BLOB NOT NULL UNIQUE,
        username        TEXT NOT NULL,
        role            TEXT NOT NULL,
        source          TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        last_seen_at    INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        user_checked_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX sessions_by_user ON sessions (username);

    CREATE TABLE api_tokens (
        id              INTEGER PRIMARY KEY,
        token_hash      BLOB NOT NULL UNIQUE,
        username        TEXT NOT NULL,
        name            TEXT NOT NULL,
        role            TEXT NOT NULL,
        owner_role      TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        last_used_at    INTEGER,
        user_checked_at INTEGER NOT NULL,
        UNIQUE (username, name)
    ) STRICT;

    CREATE TABLE totp (
        username   TEXT PRIMARY KEY NOT NULL,
        secret     BLOB NOT NULL,
        confirmed  INTEGER NOT NULL CHECK (confirmed IN (0, 1)),
        last_step  INTEGER,
        created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE recovery_codes (
        id        INTEGER PRIMARY KEY,
        username  TEXT NOT NULL REFERENCES totp (username) ON DELETE CASCADE,
        code_hash BLOB NOT NULL,
        used_at   INTEGER,
        UNIQUE (username, code_hash)
    ) STRICT;

    CREATE TABLE throttle (
        scope        TEXT NOT NULL CHECK (scope IN ('user', 'address')),
        key          TEXT NOT NULL,
        failures     INTEGER NOT NULL,
        window_start INTEGER NOT NULL,
        locked_until INTEGER,
        PRIMARY KEY (scope, key)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE audit (
        id       INTEGER PRIMARY KEY,
        at       INTEGER NOT NULL,
        event    TEXT NOT NULL,
        username TEXT,
        actor    TEXT,
        source   TEXT,
        outcome  TEXT NOT NULL,
        detail   TEXT NOT NULL
    ) STRICT;
    CREATE INDEX audit_by_time ON audit (at);
    ",
    // Version 2: login attempts whose password check is under way (see `throttle`).
    "
    CREATE TABLE login_attempts (
        id         INTEGER PRIMARY KEY,
        username   TEXT NOT NULL,
        address    TEXT NOT NULL,
        started_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX login_attempts_by_user ON login_attempts (username);
    CREATE INDEX login_attempts_by_address ON login_attempts (address);
    ",
    // Version 3: accounts get an identity that a user deleted and created again under the
    // same name does not keep, and sessions and API tokens remember the identity of the
    // account they were created for (see `UserRecord::account_id`). The rowid of `users`
    // would not do: SQLite hands a deleted row's rowid out again. Every row, whoever
    // inserts it, gets 128 random bits from the column's default (`ALTER TABLE` cannot add a
    // column with such a default, hence the copy). Sessions and tokens created before this
    // version hold NULL: their owner is taken as unchanged.
    "
    CREATE TABLE users_v3 (
        username      TEXT PRIMARY KEY NOT NULL,
        display_name  TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        account_id    TEXT NOT NULL UNIQUE DEFAULT (lower(hex(randomblob(16))))
    ) STRICT;
    INSERT INTO users_v3
        (username, display_name, role, disabled, password_hash, created_at, updated_at)
        SELECT username, display_name, role, disabled, password_hash, created_at, updated_at
        FROM users;
    DROP TABLE users;
    ALTER TABLE users_v3 RENAME TO users;

    ALTER TABLE sessions ADD COLUMN owner_account_id TEXT;
    ALTER TABLE api_tokens ADD COLUMN owner_account_id TEXT;
    ",
    // Version 4: each user's last successful login, kept beside the sessions (which end)
    // and whatever the user backend (LDAP and MySQL users have no row of ours). Filled from
    // the audit log's successful logins, so a database from before knows them too.
    "
    CREATE TABLE last_logins (
        username TEXT PRIMARY KEY NOT NULL,
        at       INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    INSERT INTO last_logins (username, at)
        SELECT username, max(at) FROM audit
        WHERE event = 'login' AND outcome = 'ok' AND username IS NOT NULL
        GROUP BY username;
    ",
];

/// The schema version this program writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The auth database failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be created.
    #[error("cannot create auth database {}", .path.display())]
    Create {
        /// The database file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite could not open or configure the file.
    #[error("cannot open auth database {}", .path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer program.
    #[error(
        "auth database {} has schema version {found}, newer than the {supported} this program knows; run a newer mfv or restore a backup", .path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: u32,
        /// [`SCHEMA_VERSION`].
        supported: u32,
    },
    /// A migration failed (and was rolled back).
    #[error("cannot migrate auth database {} to schema version {version}", .path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The version being applied.
        version: u32,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("auth database {} query failed", .path.display())]
    Query {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The blocking task running the query panicked or was cancelled.
    #[error("auth database task failed: {reason}")]
    Task {
        /// The join error.
        reason: String,
    },
}

impl StoreError {
    /// The message with its sources, for errors that travel as text (a [`BackendError`]).
    ///
    /// [`BackendError`]: crate::BackendError
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(error) = source {
            text.push_str(": ");
            text.push_str(&error.to_string());
            source = error.source();
        }
        text
    }
}

/// The SQLite database holding auth state (and the SQLite backend's users). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl SqliteState {
    /// Opens (creating it with mode 0600 if missing) and migrates the database at `path`.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        tokio::task::spawn_blocking(move || SqliteState::open_blocking(&path))
            .await
            .map_err(|error| StoreError::Task {
                reason: error.to_string(),
            })?
    }

    /// [`SqliteState::open`] for callers outside an async runtime.
    pub fn open_blocking(path: &Path) -> Result<Self, StoreError> {
        // Create the file ourselves so it is never readable by others, not even briefly.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| StoreError::Create {
                path: path.to_owned(),
                source,
            })?;
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut connection = Connection::open(path).map_err(open_error)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| {
                row.get::<_, String>(0)
            })
            .map_err(open_error)?;
        connection
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
            .map_err(open_error)?;
        migrate(&mut connection, path)?;
        Ok(SqliteState {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                connection: Mutex::new(connection),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Writes a consistent copy of the database at `source` to the new file `target` (which
    /// must not exist), while other connections may be writing: SQLite's `VACUUM INTO`, so
    /// the copy holds every committed transaction and no half of one, with its WAL folded in.
    /// For a database kept in RAM and saved to disk now and then.
    pub fn copy_blocking(source: &Path, target: &Path) -> Result<(), StoreError> {
        let connection = Connection::open_with_flags(
            source,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source_error| StoreError::Open {
            path: source.to_owned(),
            source: source_error,
        })?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|error| StoreError::Open {
                path: source.to_owned(),
                source: error,
            })?;
        let target_text = target.to_str().ok_or_else(|| StoreError::Create {
            path: target.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not UTF-8"),
        })?;
        connection
            .execute("VACUUM INTO ?1", [target_text])
            .map_err(|error| StoreError::Query {
                path: source.to_owned(),
                source: error,
            })?;
        Ok(())
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.run(|connection| connection.pragma_query_value(None, "user_version", |row| row.get(0)))
            .await
    }

    /// Runs `work` with the connection on tokio's blocking pool.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
        T: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A panic while the lock was held leaves no half-done transaction behind (a
            // `Transaction` rolls back on drop), so the connection is still sound.
            let mut connection = inner
                .connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            work(&mut connection).map_err(|source| StoreError::Query {
                path: inner.path.clone(),
                source,
            })
        })
        .await
        .map_err(|error| StoreError::Task {
            reason: error.to_string(),
        })?
    }
}

/// Applies the migrations the database lacks, each in its own transaction.
fn migrate(connection: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: u32 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        let migrate_error = |source| StoreError::Migrate {
            path: path.to_owned(),
            version,
            source,
        };
        let transaction = connection.transaction().map_err(migrate_error)?;
        transaction.execute_batch(sql).map_err(migrate_error)?;
        transaction
            .pragma_update(None, "user_version", version)
            .map_err(migrate_error)?;
        transaction.commit().map_err(migrate_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn tables(state: &SqliteState) -> Vec<String> {
        let connection = state.inner.connection.lock().unwrap();
        let mut statement = connection
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[tokio::test]
    async fn migrates_an_empty_database_and_reopens_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let state = SqliteState::open(&path).await.unwrap();
        assert_eq!(state.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(
            tables(&state),
            [
                "api_tokens",
                "audit",
                "last_logins",
                "login_attempts",
                "recovery_codes",
                "sessions",
                "throttle",
                "totp",
                "users"
            ]
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        state
            .run(|connection| {
                connection.execute(
                    "INSERT INTO audit (at, event, outcome, detail) VALUES (1, 'x', 'ok', '')",
                    [],
                )
            })
            .await
            .unwrap();
        drop(state);

        let state = SqliteState::open(&path).await.unwrap();
        assert_eq!(state.schema_version().await.unwrap(), SCHEMA_VERSION);
        let rows: i64 = state
            .run(|connection| {
                connection.query_row("SELECT count(*) FROM audit", [], |row| row.get(0))
            })
            .await
            .unwrap();
        assert_eq!(rows, 1, "re-opening keeps the data");
        let settings: (String, i64) = state
            .run(|connection| {
                Ok((
                    connection.pragma_query_value(None, "journal_mode", |row| row.get(0))?,
                    connection.pragma_query_value(None, "foreign_keys", |row| row.get(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(settings, ("wal".to_owned(), 1));
    }

    #[tokio::test]
    async fn version_3_gives_existing_users_random_ids_and_leaves_old_tokens_unbound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let connection = Connection::open(&path).unwrap();
        connection.execute_batch(MIGRATIONS[0]).unwrap();
        connection.execute_batch(MIGRATIONS[1]).unwrap();
        connection
            .execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO users VALUES ('alice', '', 'admin', 0, 'h', 1, 1);
                 INSERT INTO users VALUES ('bob', '', 'viewer', 1, 'h', 1, 1);
                 INSERT INTO api_tokens (token_hash, username, name, role, owner_role,
                                         created_at, expires_at, user_checked_at)
                     VALUES (x'00', 'alice', 'ci', 'viewer', 'admin', 1, 2, 1);",
            )
            .unwrap();
        drop(connection);

        let state = SqliteState::open(&path).await.unwrap();
        let (users, ids, token_owner): (i64, Vec<String>, Option<String>) = state
            .run(|connection| {
                let mut statement = connection.prepare("SELECT account_id FROM users")?;
                let ids = statement
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok((
                    connection.query_row("SELECT count(*) FROM users", [], |row| row.get(0))?,
                    ids,
                    connection.query_row("SELECT owner_account_id FROM api_tokens", [], |row| {
                        row.get(0)
                    })?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(users, 2);
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit())),
            "{ids:?}"
        );
        assert_ne!(ids[0], ids[1]);
        assert_eq!(token_owner, None);
    }

    #[tokio::test]
    async fn version_4_takes_each_users_last_login_from_the_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        let connection = Connection::open(&path).unwrap();
        for migration in &MIGRATIONS[..3] {
            connection.execute_batch(migration).unwrap();
        }
        connection
            .execute_batch(
                "PRAGMA user_version = 3;
                 INSERT INTO audit (at, event, username, outcome, detail) VALUES
                     (10, 'login', 'alice', 'ok', ''),
                     (20, 'login', 'alice', 'ok', ''),
                     (30, 'login', 'alice', 'refused', 'invalid credentials'),
                     (15, 'login', 'bob', 'refused', 'invalid credentials'),
                     (16, 'login', NULL, 'refused', 'not a valid user name'),
                     (40, 'logout', 'carol', 'ok', '');",
            )
            .unwrap();
        drop(connection);

        let state = SqliteState::open(&path).await.unwrap();
        let logins: Vec<(String, i64)> = state
            .run(|connection| {
                let mut statement =
                    connection.prepare("SELECT username, at FROM last_logins ORDER BY username")?;
                let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                rows.collect()
            })
            .await
            .unwrap();
        assert_eq!(logins, [("alice".to_owned(), 20)]);
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let error = SqliteState::open(&path).await.unwrap_err();
        assert!(matches!(error, StoreError::TooNew { .. }), "{error}");
        assert!(error.to_string().contains("run a newer mfv"), "{error}");
    }

    #[tokio::test]
    async fn a_failed_migration_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.db");
        // A table in the way makes version 1 fail half way through.
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE audit (x INTEGER)")
            .unwrap();
        let error = SqliteState::open(&path).await.unwrap_err();
        assert!(
            matches!(error, StoreError::Migrate { version: 1, .. }),
            "{error}"
        );
        assert!(error.chain().contains("audit"), "{}", error.chain());
        let connection = Connection::open(&path).unwrap();
        let version: u32 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        let users: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'users'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!((version, users), (0, 0));
    }

    #[tokio::test]
    async fn unwritable_location_is_a_create_error_with_the_path() {
        let error = SqliteState::open("/nonexistent-dir/auth.db")
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Create { .. }));
        assert_eq!(
            error.to_string(),
            "cannot create auth database /nonexistent-dir/auth.db"
        );
    }
}
