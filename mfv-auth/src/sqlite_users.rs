//! The SQLite user backend: accounts in the `users` table of the auth database, passwords as
//! argon2id PHC strings. The embedded default; users are managed with [`UserAdmin`].
//!
//! Each row's `account_id` (128 random bits, the column's default, so also for rows another
//! program inserts) is the [`UserRecord::account_id`]: the rowid would not do, as SQLite
//! hands a deleted row's rowid out again.

use std::fmt;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use crate::backend::{
    AdminError, BackendError, BoxFuture, CheckReport, StepOutcome, UserAdmin, UserBackend,
    UserRecord, check_display_name,
};
use crate::clock::{Clock, SystemClock};
use crate::password::{HashError, Password, PasswordHasher};
use crate::sqlite::{SqliteState, StoreError};
use crate::{Role, Username};

const BACKEND: &str = "sqlite";

/// Users in the SQLite auth database.
#[derive(Clone)]
pub struct SqliteUserBackend {
    state: SqliteState,
    hasher: PasswordHasher,
    clock: std::sync::Arc<dyn Clock>,
}

impl fmt::Debug for SqliteUserBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteUserBackend")
            .field("path", &self.state.path())
            .field("hasher", &self.hasher)
            .finish_non_exhaustive()
    }
}

/// A `users` row.
struct UserRow {
    record: UserRecord,
    password_hash: String,
}

fn store_error(error: StoreError) -> BackendError {
    match error {
        StoreError::Query { .. } => BackendError::Query {
            backend: BACKEND,
            reason: error.chain(),
        },
        _ => BackendError::Unavailable {
            backend: BACKEND,
            reason: error.chain(),
        },
    }
}

fn hash_error(error: HashError) -> BackendError {
    match error {
        HashError::InvalidHash { .. } => BackendError::InvalidData {
            backend: BACKEND,
            reason: error.to_string(),
        },
        _ => BackendError::Unavailable {
            backend: BACKEND,
            reason: error.to_string(),
        },
    }
}

/// Reads one user; a row this crate cannot accept is [`BackendError::InvalidData`].
fn read_user(
    connection: &Connection,
    user: &str,
) -> rusqlite::Result<Option<Result<UserRow, String>>> {
    connection
        .prepare_cached(
            "SELECT username, display_name, role, disabled, password_hash, account_id FROM users
             WHERE username = ?1",
        )?
        .query_row([user], row_to_user)
        .optional()
}

fn row_to_user(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<UserRow, String>> {
    let username: String = row.get(0)?;
    let display_name: String = row.get(1)?;
    let role: String = row.get(2)?;
    let disabled: bool = row.get(3)?;
    let password_hash: String = row.get(4)?;
    let account_id: String = row.get(5)?;
    Ok(
        parse_user(username, display_name, &role, disabled, account_id).map(|record| UserRow {
            record,
            password_hash,
        }),
    )
}

fn parse_user(
    username: String,
    display_name: String,
    role: &str,
    disabled: bool,
    account_id: String,
) -> Result<UserRecord, String> {
    let username = Username::new(username.clone())
        .map_err(|error| format!("users row {username:?}: {error}"))?;
    let role: Role = role
        .parse()
        .map_err(|error| format!("users row {username:?}: {error}"))?;
    Ok(UserRecord {
        username,
        display_name,
        role,
        disabled,
        account_id: Some(account_id),
    })
}

fn invalid(reason: String) -> BackendError {
    BackendError::InvalidData {
        backend: BACKEND,
        reason,
    }
}

impl SqliteUserBackend {
    /// Users in `state`'s database; new passwords hashed with `hasher`.
    pub fn new(state: SqliteState, hasher: PasswordHasher) -> Self {
        SqliteUserBackend::with_clock(state, hasher, std::sync::Arc::new(SystemClock))
    }

    /// As [`SqliteUserBackend::new`], stamping `created_at`/`updated_at` from `clock`.
    pub fn with_clock(
        state: SqliteState,
        hasher: PasswordHasher,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Self {
        SqliteUserBackend {
            state,
            hasher,
            clock,
        }
    }

    async fn find_row(&self, user: &Username) -> Result<Option<UserRow>, BackendError> {
        let name = user.as_str().to_owned();
        match self
            .state
            .run(move |connection| read_user(connection, &name))
            .await
            .map_err(store_error)?
        {
            None => Ok(None),
            Some(Ok(row)) => Ok(Some(row)),
            Some(Err(reason)) => Err(invalid(reason)),
        }
    }

    /// Runs an UPDATE on one user; zero rows changed is [`AdminError::NoSuchUser`].
    async fn update_user(
        &self,
        user: &Username,
        sql: &'static str,
        value: rusqlite::types::Value,
    ) -> Result<(), AdminError> {
        let name = user.as_str().to_owned();
        let now = self.clock.now().0;
        let changed = self
            .state
            .run(move |connection| connection.execute(sql, params![name, value, now]))
            .await
            .map_err(store_error)?;
        if changed == 0 {
            return Err(AdminError::NoSuchUser { user: user.clone() });
        }
        Ok(())
    }
}

impl UserBackend for SqliteUserBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn verify_password<'a>(
        &'a self,
        user: &'a Username,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        Box::pin(async move {
            let row = self.find_row(user).await?;
            let stored = row.as_ref().map(|row| row.password_hash.clone());
            // Unknown users are verified against the dummy hash: same cost as a wrong password.
            let correct = self
                .hasher
                .verify_blocking(password, stored)
                .await
                .map_err(hash_error)?;
            Ok(row
                .filter(|row| correct && !row.record.disabled)
                .map(|row| row.record))
        })
    }

    fn find_user<'a>(
        &'a self,
        user: &'a Username,
    ) -> BoxFuture<'a, Result<Option<UserRecord>, BackendError>> {
        Box::pin(async move { Ok(self.find_row(user).await?.map(|row| row.record)) })
    }

    fn list_users<'a>(&'a self) -> BoxFuture<'a, Result<Vec<UserRecord>, BackendError>> {
        Box::pin(async move {
            let rows = self
                .state
                .run(|connection| {
                    let mut statement = connection.prepare_cached(
                        "SELECT username, display_name, role, disabled, password_hash, account_id FROM users
                         ORDER BY username",
                    )?;
                    let rows = statement.query_map([], row_to_user)?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })
                .await
                .map_err(store_error)?;
            rows.into_iter()
                .map(|row| row.map(|row| row.record).map_err(invalid))
                .collect()
        })
    }

    fn check<'a>(&'a self, user: &'a Username) -> BoxFuture<'a, CheckReport> {
        Box::pin(async move {
            let mut report = CheckReport::new(BACKEND, user.clone());
            match self.state.schema_version().await {
                Ok(version) => report.push(
                    "open",
                    StepOutcome::Passed(format!(
                        "{} (schema version {version})",
                        self.state.path().display()
                    )),
                ),
                Err(error) => {
                    report.push("open", StepOutcome::Failed(error.chain()));
                    report.push(
                        "user",
                        StepOutcome::Skipped("the database did not open".into()),
                    );
                    return report;
                }
            }
            let outcome = match self.find_row(user).await {
                Ok(Some(row)) => {
                    let record = row.record;
                    if record.disabled {
                        StepOutcome::Failed(format!(
                            "{} exists with role {} but is disabled (mfv user enable {})",
                            record.username, record.role, record.username
                        ))
                    } else {
                        StepOutcome::Passed(format!(
                            "{} exists with role {}",
                            record.username, record.role
                        ))
                    }
                }
                Ok(None) => StepOutcome::Failed(format!("no user {user} (mfv user add {user})")),
                Err(error) => StepOutcome::Failed(error.to_string()),
            };
            report.push("user", outcome);
            report
        })
    }

    fn admin(&self) -> Option<&dyn UserAdmin> {
        Some(self)
    }
}

impl UserAdmin for SqliteUserBackend {
    fn add_user<'a>(
        &'a self,
        user: &'a UserRecord,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            check_display_name(&user.display_name)?;
            let hash = self.hasher.hash_blocking(password).await?;
            let record = user.clone();
            let now = self.clock.now().0;
            let inserted = self
                .state
                .run(move |connection| {
                    match connection.execute(
                        "INSERT INTO users
                             (username, display_name, role, disabled, password_hash, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                        params![
                            record.username.as_str(),
                            record.display_name,
                            record.role.as_str(),
                            record.disabled,
                            hash,
                            now
                        ],
                    ) {
                        Ok(_) => Ok(true),
                        Err(rusqlite::Error::SqliteFailure(error, _))
                            if error.code == ErrorCode::ConstraintViolation =>
                        {
                            Ok(false)
                        }
                        Err(error) => Err(error),
                    }
                })
                .await
                .map_err(store_error)?;
            if !inserted {
                return Err(AdminError::UserExists {
                    user: user.username.clone(),
                });
            }
            Ok(())
        })
    }

    fn delete_user<'a>(&'a self, user: &'a Username) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            let name = user.as_str().to_owned();
            let deleted = self
                .state
                .run(move |connection| {
                    connection.execute("DELETE FROM users WHERE username = ?1", [name])
                })
                .await
                .map_err(store_error)?;
            if deleted == 0 {
                return Err(AdminError::NoSuchUser { user: user.clone() });
            }
            Ok(())
        })
    }

    fn set_password<'a>(
        &'a self,
        user: &'a Username,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            let hash = self.hasher.hash_blocking(password).await?;
            self.update_user(
                user,
                "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE username = ?1",
                hash.into(),
            )
            .await
        })
    }

    fn set_role<'a>(
        &'a self,
        user: &'a Username,
        role: Role,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            self.update_user(
                user,
                "UPDATE users SET role = ?2, updated_at = ?3 WHERE username = ?1",
                role.as_str().to_owned().into(),
            )
            .await
        })
    }

    fn set_disabled<'a>(
        &'a self,
        user: &'a Username,
        disabled: bool,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            self.update_user(
                user,
                "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE username = ?1",
                i64::from(disabled).into(),
            )
            .await
        })
    }

    fn set_display_name<'a>(
        &'a self,
        user: &'a Username,
        display_name: &'a str,
    ) -> BoxFuture<'a, Result<(), AdminError>> {
        Box::pin(async move {
            check_display_name(display_name)?;
            self.update_user(
                user,
                "UPDATE users SET display_name = ?2, updated_at = ?3 WHERE username = ?1",
                display_name.to_owned().into(),
            )
            .await
        })
    }
}
