//! Login sessions: 256-bit random tokens of which only the SHA-256 digest is stored, with an
//! idle and an absolute expiry; listed and revoked per user.

use std::net::IpAddr;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::audit::{AuditEvent, AuditOutcome};
use crate::authenticator::{Actor, AuthError, Authenticator, CheckError};
use crate::backend::UserRecord;
use crate::clock::Timestamp;
use crate::secret::{self, RandomError, Secret};
use crate::sqlite::StoreError;
use crate::{Role, Username};

/// Use of a session or token is written back at most this often (seconds), so that checks
/// are mostly reads.
pub(crate) const LAST_USE_GRANULARITY: i64 = 15;

/// A session just opened: the token to hand to the client (once) and what it grants.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session token: 64 hex digits (256 random bits). Only its SHA-256 is stored.
    pub token: Secret,
    /// The session.
    pub info: SessionInfo,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Identifies the session for listing and revoking (not a secret).
    pub id: i64,
    /// Whose session.
    pub username: Username,
    /// The user's role, as of the last re-check.
    pub role: Role,
    /// The client address at login.
    pub source: String,
    /// When the user logged in.
    pub created_at: Timestamp,
    /// When the session was last used (to 15 seconds: use is written back at most that often).
    pub last_seen_at: Timestamp,
    /// When it ends if not used before.
    pub idle_expires_at: Timestamp,
    /// When it ends however much it is used.
    pub expires_at: Timestamp,
}

pub(crate) enum OpenError {
    Random(RandomError),
    State(StoreError),
}

/// A `sessions` row.
struct SessionRow {
    id: i64,
    username: String,
    role: String,
    source: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    user_checked_at: i64,
    /// The [`UserRecord::account_id`] of the user at login; NULL for sessions opened before
    /// accounts had identities (schema version 3), which are taken as the user's.
    owner_account_id: Option<String>,
}

const SELECT_SESSION: &str = "SELECT id, username, role, source, created_at, last_seen_at, expires_at, user_checked_at, owner_account_id FROM sessions";

fn row_to_session(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: row.get(0)?,
        username: row.get(1)?,
        role: row.get(2)?,
        source: row.get(3)?,
        created_at: row.get(4)?,
        last_seen_at: row.get(5)?,
        expires_at: row.get(6)?,
        user_checked_at: row.get(7)?,
        owner_account_id: row.get(8)?,
    })
}

impl Authenticator {
    fn session_info(&self, row: &SessionRow) -> Option<SessionInfo> {
        let last_seen_at = Timestamp(row.last_seen_at);
        Some(SessionInfo {
            id: row.id,
            username: Username::new(row.username.clone()).ok()?,
            role: row.role.parse().ok()?,
            source: row.source.clone(),
            created_at: Timestamp(row.created_at),
            last_seen_at,
            idle_expires_at: last_seen_at.plus(self.policy.session_idle),
            expires_at: Timestamp(row.expires_at),
        })
    }

    /// Whether a session row has expired at `now`.
    fn session_expired(&self, row: &SessionRow, now: Timestamp) -> bool {
        now >= Timestamp(row.expires_at)
            || now >= Timestamp(row.last_seen_at).plus(self.policy.session_idle)
    }

    /// Opens a session for a user who just proved who they are.
    pub(crate) async fn open_session(
        &self,
        user: &UserRecord,
        source: IpAddr,
    ) -> Result<Session, OpenError> {
        let token = secret::random_hex_256().map_err(OpenError::Random)?;
        let digest = secret::digest(&token);
        let now = self.clock.now();
        let expires_at = now.plus(self.policy.session_absolute);
        let name = user.username.as_str().to_owned();
        let role = user.role;
        let account_id = user.account_id.clone();
        let source_text = source.to_string();
        let stored_source = source_text.clone();
        let id = self
            .state
            .run(move |connection| {
                let transaction = connection.transaction()?;
                transaction.execute(
                    "INSERT INTO sessions
                         (token_hash, username, role, source, created_at, last_seen_at, expires_at, user_checked_at, owner_account_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?5, ?7)",
                    params![digest, name, role.as_str(), stored_source, now.0, expires_at.0, account_id],
                )?;
                let id = transaction.last_insert_rowid();
                transaction.execute(
                    "INSERT INTO last_logins (username, at) VALUES (?1, ?2)
                     ON CONFLICT (username) DO UPDATE SET at = excluded.at",
                    params![name, now.0],
                )?;
                transaction.commit()?;
                Ok(id)
            })
            .await
            .map_err(OpenError::State)?;
        Ok(Session {
            token: Secret::new(token),
            info: SessionInfo {
                id,
                username: user.username.clone(),
                role,
                source: source_text,
                created_at: now,
                last_seen_at: now,
                idle_expires_at: now.plus(self.policy.session_idle),
                expires_at,
            },
        })
    }

    /// Checks a session token and records its use (which moves the idle expiry). Every
    /// [`AuthPolicy::user_recheck`](crate::AuthPolicy::user_recheck) the user is looked up
    /// again: gone or disabled ends the session, and so does a name that now stands for
    /// another account than at login (deleted and created again: every session of the earlier
    /// account ends); a new role is taken over; a backend that cannot answer refuses the
    /// request.
    pub async fn check_session(&self, token: &str) -> Result<SessionInfo, CheckError> {
        let now = self.clock.now();
        let digest = secret::digest(token);
        let row = self
            .state
            .run(move |connection| {
                connection
                    .prepare_cached(&format!("{SELECT_SESSION} WHERE token_hash = ?1"))?
                    .query_row([digest], row_to_session)
                    .optional()
            })
            .await
            .map_err(CheckError::State)?;
        let Some(mut row) = row else {
            return Err(CheckError::SessionInvalid);
        };
        let info = self.session_info(&row);
        if self.session_expired(&row, now) || info.is_none() {
            self.delete_session(row.id)
                .await
                .map_err(CheckError::State)?;
            return Err(CheckError::SessionInvalid);
        }
        let mut rechecked = false;
        if now >= Timestamp(row.user_checked_at).plus(self.policy.user_recheck) {
            let Some(username) = info.as_ref().map(|info| info.username.clone()) else {
                return Err(CheckError::SessionInvalid);
            };
            let ended = match self.backend.find_user(&username).await {
                Err(error) => return Err(CheckError::BackendUnavailable(error)),
                Ok(Some(user)) if !user.is_account(row.owner_account_id.as_deref()) => {
                    let ended = self
                        .delete_sessions_of_other_accounts(&username, user.account_id)
                        .await
                        .map_err(CheckError::State)?;
                    Some(format!(
                        "{ended} session(s): user name now stands for another account"
                    ))
                }
                Ok(Some(user)) if !user.disabled => {
                    row.role = user.role.as_str().to_owned();
                    row.user_checked_at = now.0;
                    // A session from before accounts had identities is bound from now on.
                    row.owner_account_id = row.owner_account_id.or(user.account_id);
                    rechecked = true;
                    None
                }
                Ok(found) => {
                    self.delete_session(row.id)
                        .await
                        .map_err(CheckError::State)?;
                    let reason = if found.is_some() {
                        "user disabled"
                    } else {
                        "user removed"
                    };
                    Some(format!("session {}: {reason}", row.id))
                }
            };
            if let Some(detail) = ended {
                self.audit(
                    AuditEvent::SessionRevoked,
                    AuditOutcome::Ok,
                    Some(username.as_str()),
                    None,
                    None,
                    detail,
                )
                .await
                .map_err(CheckError::State)?;
                return Err(CheckError::SessionInvalid);
            }
        }
        if rechecked || now.0 - row.last_seen_at >= LAST_USE_GRANULARITY {
            row.last_seen_at = now.0;
            let (id, role, checked, account_id) = (
                row.id,
                row.role.clone(),
                row.user_checked_at,
                row.owner_account_id.clone(),
            );
            self.state
                .run(move |connection| {
                    connection
                        .prepare_cached(
                            "UPDATE sessions
                             SET last_seen_at = ?2, role = ?3, user_checked_at = ?4, owner_account_id = ?5
                             WHERE id = ?1",
                        )?
                        .execute(params![id, now.0, role, checked, account_id])
                })
                .await
                .map_err(CheckError::State)?;
        }
        self.session_info(&row).ok_or(CheckError::SessionInvalid)
    }

    async fn delete_session(&self, id: i64) -> Result<usize, StoreError> {
        self.state
            .run(move |connection| connection.execute("DELETE FROM sessions WHERE id = ?1", [id]))
            .await
    }

    pub(crate) async fn delete_sessions_of(&self, user: &Username) -> Result<usize, StoreError> {
        let name = user.as_str().to_owned();
        self.state
            .run(move |connection| {
                connection.execute("DELETE FROM sessions WHERE username = ?1", [name])
            })
            .await
    }

    /// Deletes the sessions of `user` opened for another account than the one the name
    /// stands for now (`account_id`); sessions without a stored identity stay.
    async fn delete_sessions_of_other_accounts(
        &self,
        user: &Username,
        account_id: Option<String>,
    ) -> Result<usize, StoreError> {
        let name = user.as_str().to_owned();
        self.state
            .run(move |connection| {
                connection.execute(
                    "DELETE FROM sessions WHERE username = ?1
                     AND owner_account_id IS NOT NULL AND owner_account_id IS NOT ?2",
                    params![name, account_id],
                )
            })
            .await
    }

    /// Ends the session with this token (logout). Unknown tokens are ignored.
    pub async fn logout(&self, token: &str, source: IpAddr) -> Result<(), AuthError> {
        let digest = secret::digest(token);
        let ended = self
            .state
            .run(move |connection| {
                connection
                    .query_row(
                        "DELETE FROM sessions WHERE token_hash = ?1 RETURNING id, username",
                        [digest],
                        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
                    )
                    .optional()
            })
            .await?;
        if let Some((id, username)) = ended {
            self.audit(
                AuditEvent::Logout,
                AuditOutcome::Ok,
                Some(&username),
                None,
                Some(source),
                format!("session {id}"),
            )
            .await?;
        }
        Ok(())
    }

    /// The unexpired sessions of `user`, or of everyone; oldest first.
    pub async fn list_sessions(
        &self,
        user: Option<&Username>,
    ) -> Result<Vec<SessionInfo>, AuthError> {
        let now = self.clock.now();
        let name = user.map(|user| user.as_str().to_owned());
        let rows = self
            .state
            .run(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "{SELECT_SESSION} WHERE ?1 IS NULL OR username = ?1 ORDER BY id"
                ))?;
                let rows = statement.query_map([name], row_to_session)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        Ok(rows
            .iter()
            .filter(|row| !self.session_expired(row, now))
            .filter_map(|row| self.session_info(row))
            .collect())
    }

    /// Revokes one session by id.
    pub async fn revoke_session(&self, actor: &Actor, id: i64) -> Result<(), AuthError> {
        let username = self
            .state
            .run(move |connection| {
                connection
                    .query_row(
                        "DELETE FROM sessions WHERE id = ?1 RETURNING username",
                        [id],
                        |row| row.get::<_, String>(0),
                    )
                    .optional()
            })
            .await?;
        let Some(username) = username else {
            return Err(AuthError::NoSuchSession { id });
        };
        self.audit(
            AuditEvent::SessionRevoked,
            AuditOutcome::Ok,
            Some(&username),
            Some(actor),
            None,
            format!("session {id}"),
        )
        .await?;
        Ok(())
    }

    /// Revokes every session of `user`; returns how many there were.
    pub async fn revoke_all_sessions(
        &self,
        actor: &Actor,
        user: &Username,
    ) -> Result<usize, AuthError> {
        let ended = self.delete_sessions_of(user).await?;
        self.audit(
            AuditEvent::SessionRevoked,
            AuditOutcome::Ok,
            Some(user.as_str()),
            Some(actor),
            None,
            format!("all sessions ({ended})"),
        )
        .await?;
        Ok(ended)
    }

    /// Deletes expired sessions and API tokens (housekeeping; expired ones are refused
    /// anyway). Returns how many rows went.
    pub async fn purge_expired(&self) -> Result<usize, AuthError> {
        let now = self.clock.now();
        let idle = i64::try_from(self.policy.session_idle.as_secs()).unwrap_or(i64::MAX);
        Ok(self
            .state
            .run(move |connection| {
                let sessions = connection.execute(
                    "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen_at <= ?1 - ?2",
                    params![now.0, idle],
                )?;
                let tokens =
                    connection.execute("DELETE FROM api_tokens WHERE expires_at <= ?1", [now.0])?;
                Ok(sessions + tokens)
            })
            .await?)
    }
}
