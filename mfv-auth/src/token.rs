//! API tokens: named, owned by a user, scoped to a role no higher than the owner's, with an
//! expiry. The secret (`mfv_` + 64 hex digits) is shown once at creation; only its SHA-256
//! is stored.

use std::time::Duration;

use rusqlite::{ErrorCode, OptionalExtension, params};
use serde::Serialize;

use crate::audit::{AuditEvent, AuditOutcome};
use crate::authenticator::{Actor, AuthError, Authenticator, CheckError};
use crate::clock::Timestamp;
use crate::secret::{self, Secret};
use crate::session::LAST_USE_GRANULARITY;
use crate::sqlite::StoreError;
use crate::{Role, Username};

/// Every API token starts with this, so it is recognisable in a leaked log or a secret
/// scanner, and told apart from a session token.
pub const API_TOKEN_PREFIX: &str = "mfv_";

/// Longest token name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 64;

/// A token just created: the secret, shown once, and what it grants.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    /// `mfv_` followed by 64 hex digits. Not retrievable later.
    pub secret: Secret,
    /// The token.
    pub info: ApiTokenInfo,
}

/// An API token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiTokenInfo {
    /// Identifies the token for listing and revoking (not a secret).
    pub id: i64,
    /// The owner.
    pub owner: Username,
    /// The owner's label for it, unique per owner.
    pub name: String,
    /// The role it was created with.
    pub role: Role,
    /// What it grants now: its role, lowered to the owner's current role if that is lower.
    pub effective_role: Role,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was last used (to 15 seconds), if ever.
    pub last_used_at: Option<Timestamp>,
}

struct TokenRow {
    id: i64,
    username: String,
    name: String,
    role: String,
    owner_role: String,
    created_at: i64,
    expires_at: i64,
    last_used_at: Option<i64>,
    user_checked_at: i64,
    /// The owner's [`UserRecord::account_id`](crate::UserRecord::account_id) at creation;
    /// NULL for tokens created before accounts had identities (schema version 3), which are
    /// taken as the owner's.
    owner_account_id: Option<String>,
}

const SELECT_TOKEN: &str = "SELECT id, username, name, role, owner_role, created_at, expires_at, last_used_at, user_checked_at, owner_account_id FROM api_tokens";

fn row_to_token(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: row.get(0)?,
        username: row.get(1)?,
        name: row.get(2)?,
        role: row.get(3)?,
        owner_role: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
        last_used_at: row.get(7)?,
        user_checked_at: row.get(8)?,
        owner_account_id: row.get(9)?,
    })
}

fn token_info(row: &TokenRow) -> Option<ApiTokenInfo> {
    let role: Role = row.role.parse().ok()?;
    let owner_role: Role = row.owner_role.parse().ok()?;
    Some(ApiTokenInfo {
        id: row.id,
        owner: Username::new(row.username.clone()).ok()?,
        name: row.name.clone(),
        role,
        effective_role: role.min(owner_role),
        created_at: Timestamp(row.created_at),
        expires_at: Timestamp(row.expires_at),
        last_used_at: row.last_used_at.map(Timestamp),
    })
}

/// Which API tokens of an owner can no longer be used by anyone.
enum StaleTokens {
    /// The owner no longer exists: all of them.
    OwnerGone,
    /// The owner's name now stands for the account `account_id`: those made for another
    /// (those without a stored identity stay: they are taken as the current account's).
    OwnerReplaced { account_id: Option<String> },
}

impl StaleTokens {
    /// Why they went, for the audit log.
    fn reason(&self) -> &'static str {
        match self {
            StaleTokens::OwnerGone => "owner no longer exists",
            StaleTokens::OwnerReplaced { .. } => "owner's name now stands for another account",
        }
    }
}

impl Authenticator {
    /// Creates an API token for `owner` with `role` (at most the owner's role) that expires
    /// after `lifetime` (at most [`AuthPolicy::api_token_max_lifetime`]).
    ///
    /// [`AuthPolicy::api_token_max_lifetime`]: crate::AuthPolicy::api_token_max_lifetime
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        owner: &Username,
        name: &str,
        role: Role,
        lifetime: Duration,
    ) -> Result<NewApiToken, AuthError> {
        let result = self
            .create_api_token_unaudited(owner, name, role, lifetime)
            .await;
        let (outcome, detail) = match &result {
            Ok(token) => (
                AuditOutcome::Ok,
                format!("token {} {name:?} role {role}", token.info.id),
            ),
            Err(error) => (
                AuditOutcome::Refused,
                format!("token {name:?} role {role}: {error}"),
            ),
        };
        self.audit(
            AuditEvent::TokenCreated,
            outcome,
            Some(owner.as_str()),
            Some(actor),
            None,
            detail,
        )
        .await?;
        result
    }

    async fn create_api_token_unaudited(
        &self,
        owner: &Username,
        name: &str,
        role: Role,
        lifetime: Duration,
    ) -> Result<NewApiToken, AuthError> {
        let name_len = name.chars().count();
        if name_len == 0 || name_len > MAX_TOKEN_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(AuthError::TokenName {
                name: name.to_owned(),
            });
        }
        if lifetime.is_zero() || lifetime > self.policy.api_token_max_lifetime {
            return Err(AuthError::TokenLifetime {
                max_days: self.policy.api_token_max_lifetime.as_secs() / 86_400,
            });
        }
        let user = match self.backend.find_user(owner).await? {
            Some(user) if !user.disabled => user,
            _ => {
                return Err(AuthError::NoSuchUser {
                    user: owner.clone(),
                });
            }
        };
        if role > user.role {
            return Err(AuthError::RoleAboveOwner {
                owner: owner.clone(),
                requested: role,
                owner_role: user.role,
            });
        }
        let token = format!("{API_TOKEN_PREFIX}{}", secret::random_hex_256()?);
        let digest = secret::digest(&token);
        let now = self.clock.now();
        let expires_at = now.plus(lifetime);
        let (owner_text, name_text, owner_role, account_id) = (
            owner.as_str().to_owned(),
            name.to_owned(),
            user.role,
            user.account_id,
        );
        let id = self
            .state
            .run(move |connection| {
                match connection.execute(
                    "INSERT INTO api_tokens
                         (token_hash, username, name, role, owner_role, created_at, expires_at, user_checked_at, owner_account_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8)",
                    params![
                        digest,
                        owner_text,
                        name_text,
                        role.as_str(),
                        owner_role.as_str(),
                        now.0,
                        expires_at.0,
                        account_id
                    ],
                ) {
                    Ok(_) => Ok(Some(connection.last_insert_rowid())),
                    Err(rusqlite::Error::SqliteFailure(error, _))
                        if error.code == ErrorCode::ConstraintViolation =>
                    {
                        Ok(None)
                    }
                    Err(error) => Err(error),
                }
            })
            .await?;
        let Some(id) = id else {
            return Err(AuthError::TokenNameTaken {
                owner: owner.clone(),
                name: name.to_owned(),
            });
        };
        Ok(NewApiToken {
            secret: Secret::new(token),
            info: ApiTokenInfo {
                id,
                owner: owner.clone(),
                name: name.to_owned(),
                role,
                effective_role: role,
                created_at: now,
                expires_at,
                last_used_at: None,
            },
        })
    }

    /// Checks an API token. The owner is re-checked every
    /// [`AuthPolicy::user_recheck`](crate::AuthPolicy::user_recheck): a disabled owner makes
    /// the token invalid; a removed owner, or a name that now stands for another account than
    /// at creation (deleted and created again), deletes it with the owner's other tokens of
    /// that earlier account; a demoted owner lowers its effective role; a backend that cannot
    /// answer refuses the request.
    pub async fn check_api_token(&self, token: &str) -> Result<ApiTokenInfo, CheckError> {
        if !token.starts_with(API_TOKEN_PREFIX) {
            return Err(CheckError::TokenInvalid);
        }
        let now = self.clock.now();
        let digest = secret::digest(token);
        let row = self
            .state
            .run(move |connection| {
                connection
                    .prepare_cached(&format!("{SELECT_TOKEN} WHERE token_hash = ?1"))?
                    .query_row([digest], row_to_token)
                    .optional()
            })
            .await
            .map_err(CheckError::State)?;
        let Some(mut row) = row else {
            return Err(CheckError::TokenInvalid);
        };
        if now >= Timestamp(row.expires_at) {
            return Err(CheckError::TokenInvalid);
        }
        let owner = token_info(&row)
            .map(|info| info.owner)
            .ok_or(CheckError::TokenInvalid)?;
        let mut changed = now.0 - row.last_used_at.unwrap_or(i64::MIN / 2) >= LAST_USE_GRANULARITY;
        if now >= Timestamp(row.user_checked_at).plus(self.policy.user_recheck) {
            match self.backend.find_user(&owner).await {
                Err(error) => return Err(CheckError::BackendUnavailable(error)),
                Ok(Some(user)) if !user.is_account(row.owner_account_id.as_deref()) => {
                    let stale = StaleTokens::OwnerReplaced {
                        account_id: user.account_id,
                    };
                    self.delete_tokens_of(owner.as_str().to_owned(), stale)
                        .await
                        .map_err(CheckError::State)?;
                    return Err(CheckError::TokenInvalid);
                }
                Ok(Some(user)) if !user.disabled => {
                    row.owner_role = user.role.as_str().to_owned();
                    row.user_checked_at = now.0;
                    // A token from before accounts had identities is bound from now on.
                    row.owner_account_id = row.owner_account_id.or(user.account_id);
                    changed = true;
                }
                Ok(Some(_)) => return Err(CheckError::TokenInvalid),
                Ok(None) => {
                    self.delete_tokens_of(owner.as_str().to_owned(), StaleTokens::OwnerGone)
                        .await
                        .map_err(CheckError::State)?;
                    return Err(CheckError::TokenInvalid);
                }
            }
        }
        if changed {
            row.last_used_at = Some(now.0);
            let (id, owner_role, checked, account_id) = (
                row.id,
                row.owner_role.clone(),
                row.user_checked_at,
                row.owner_account_id.clone(),
            );
            self.state
                .run(move |connection| {
                    connection
                        .prepare_cached(
                            "UPDATE api_tokens
                             SET last_used_at = ?2, owner_role = ?3, user_checked_at = ?4, owner_account_id = ?5
                             WHERE id = ?1",
                        )?
                        .execute(params![id, now.0, owner_role, checked, account_id])
                })
                .await
                .map_err(CheckError::State)?;
        }
        token_info(&row).ok_or(CheckError::TokenInvalid)
    }

    /// The API tokens of `owner`, or of everyone, expired ones included; oldest first.
    pub async fn list_api_tokens(
        &self,
        owner: Option<&Username>,
    ) -> Result<Vec<ApiTokenInfo>, AuthError> {
        let name = owner.map(|owner| owner.as_str().to_owned());
        let rows = self
            .state
            .run(move |connection| {
                let mut statement = connection.prepare_cached(&format!(
                    "{SELECT_TOKEN} WHERE ?1 IS NULL OR username = ?1 ORDER BY id"
                ))?;
                let rows = statement.query_map([name], row_to_token)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        Ok(rows.iter().filter_map(token_info).collect())
    }

    /// Deletes the API tokens of every owner the backend no longer knows (removed, or in no
    /// mapped group any more), and those made for an earlier account of a name that now
    /// stands for another (deleted and created again), so that whoever is given the name
    /// cannot use them. Tokens of disabled owners stay (refused until the owner is enabled
    /// again). Returns how many tokens went; a backend that cannot answer deletes nothing
    /// more and is an error.
    pub async fn remove_orphaned_tokens(&self) -> Result<usize, AuthError> {
        let owners: Vec<String> = self
            .state
            .run(|connection| {
                let mut statement =
                    connection.prepare_cached("SELECT DISTINCT username FROM api_tokens")?;
                let rows = statement.query_map([], |row| row.get(0))?;
                rows.collect()
            })
            .await?;
        let mut removed = 0;
        for owner in owners {
            // A name that is not a valid user name can never log in again: its tokens go.
            let found = match Username::new(owner.clone()) {
                Ok(user) => self.backend.find_user(&user).await?,
                Err(_) => None,
            };
            let stale = match found {
                Some(user) => StaleTokens::OwnerReplaced {
                    account_id: user.account_id,
                },
                None => StaleTokens::OwnerGone,
            };
            removed += self.delete_tokens_of(owner, stale).await?;
        }
        Ok(removed)
    }

    /// Deletes the `stale` API tokens of `owner` and audits it.
    async fn delete_tokens_of(
        &self,
        owner: String,
        stale: StaleTokens,
    ) -> Result<usize, StoreError> {
        let name = owner.clone();
        let reason = stale.reason();
        let deleted = self
            .state
            .run(move |connection| match stale {
                StaleTokens::OwnerGone => {
                    connection.execute("DELETE FROM api_tokens WHERE username = ?1", [name])
                }
                StaleTokens::OwnerReplaced { account_id } => connection.execute(
                    "DELETE FROM api_tokens WHERE username = ?1
                     AND owner_account_id IS NOT NULL AND owner_account_id IS NOT ?2",
                    params![name, account_id],
                ),
            })
            .await?;
        if deleted > 0 {
            self.audit(
                AuditEvent::TokenRevoked,
                AuditOutcome::Ok,
                Some(&owner),
                None,
                None,
                format!("{deleted} token(s): {reason}"),
            )
            .await?;
        }
        Ok(deleted)
    }

    /// Revokes (deletes) an API token.
    pub async fn revoke_api_token(&self, actor: &Actor, id: i64) -> Result<(), AuthError> {
        let revoked = self
            .state
            .run(move |connection| {
                connection
                    .query_row(
                        "DELETE FROM api_tokens WHERE id = ?1 RETURNING username, name",
                        [id],
                        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
                    )
                    .optional()
            })
            .await?;
        let Some((owner, name)) = revoked else {
            return Err(AuthError::NoSuchToken { id });
        };
        self.audit(
            AuditEvent::TokenRevoked,
            AuditOutcome::Ok,
            Some(&owner),
            Some(actor),
            None,
            format!("token {id} {name:?}"),
        )
        .await?;
        Ok(())
    }
}
